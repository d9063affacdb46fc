"""DER telemetry keyed by (resource_id, metric, at): no surrogate id, no per-row foreign key

Revision ID: i17_telemetry_key
Revises: i16_reading_key

Telemetry arrives by binary COPY from the MQTT subscriber (issue 17's 100,000 samples/s). Each
stored sample paid for a sequence call, a second B-tree entry (`der_telemetry_pkey` on `id`,
read by no query: every read names resource, metric and time) and a foreign-key trigger to
`der_resources`. The subscriber resolves every sample's resource from its topic before storing
it and resources are never deleted (they are decommissioned), as with `meter_readings`
(migrations i16_reading_ingest, i16_reading_key). The unique key becomes the primary key
(same columns, same ON CONFLICT target).
"""

import sqlalchemy as sa
from alembic import op

revision = "i17_telemetry_key"
down_revision = "i16_reading_key"
branch_labels = None
depends_on = None

KEY = ["resource_id", "metric", "at"]
PG_FK = "der_telemetry_resource_id_fkey"  # PostgreSQL's name for the unnamed constraint
SQLITE_FK = "fk_der_telemetry_resource_id_der_resources"
SQLITE_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(PG_FK, "der_telemetry", type_="foreignkey")
        op.drop_constraint("der_telemetry_pkey", "der_telemetry", type_="primary")
        op.drop_column("der_telemetry", "id")
        op.drop_constraint("uq_der_telemetry", "der_telemetry", type_="unique")
        op.create_primary_key("der_telemetry_pkey", "der_telemetry", KEY)
        return
    with op.batch_alter_table(
        "der_telemetry", recreate="always", naming_convention=SQLITE_NAMES
    ) as batch:
        batch.drop_constraint(SQLITE_FK, type_="foreignkey")
        batch.drop_constraint("uq_der_telemetry", type_="unique")
        batch.drop_column("id")
        batch.create_primary_key("der_telemetry_pkey", KEY)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("der_telemetry_pkey", "der_telemetry", type_="primary")
        op.create_unique_constraint("uq_der_telemetry", "der_telemetry", KEY)
        op.execute("ALTER TABLE der_telemetry ADD COLUMN id BIGSERIAL PRIMARY KEY")
        op.create_foreign_key(PG_FK, "der_telemetry", "der_resources", ["resource_id"], ["id"])
        return
    with op.batch_alter_table("der_telemetry", recreate="always") as batch:
        batch.drop_constraint("der_telemetry_pkey", type_="primary")
        batch.add_column(sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True))
        batch.create_unique_constraint("uq_der_telemetry", KEY)
        batch.create_foreign_key(SQLITE_FK, "der_resources", ["resource_id"], ["id"])

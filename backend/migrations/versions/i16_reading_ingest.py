"""Meter readings take bulk loads: no per-row foreign-key check, no received_at index

Revision ID: i16_reading_ingest
Revises: i17_forecast_runs
Bulk ingest writes readings with a binary COPY straight into `meter_readings`; measured on
the 2-core machine the foreign key to `meters` (one RI trigger per row) halved the rows/s of
that COPY and the `received_at` index (read by no query: corrections are found through the
(meter_id, interval_start) key) cost another tenth. Every reading's meter is resolved from
`meters` by the ingest before it is stored, and meters are never deleted.
"""

from alembic import op

revision = "i16_reading_ingest"
down_revision = "i17_vpp_trading"
branch_labels = None
depends_on = None

PG_FK = "meter_readings_meter_id_fkey"  # PostgreSQL's name for the unnamed constraint
SQLITE_FK = "fk_meter_readings_meter_id_meters"
SQLITE_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def upgrade() -> None:
    op.drop_index("ix_meter_readings_received", table_name="meter_readings")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(PG_FK, "meter_readings", type_="foreignkey")
        return
    with op.batch_alter_table("meter_readings", naming_convention=SQLITE_NAMES) as batch:
        batch.drop_constraint(SQLITE_FK, type_="foreignkey")


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("meter_readings") as batch:
        batch.create_foreign_key(
            PG_FK if postgresql else SQLITE_FK, "meters", ["meter_id"], ["meter_id"]
        )
    op.create_index("ix_meter_readings_received", "meter_readings", ["received_at"])

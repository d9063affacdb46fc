"""DER telemetry holds one row per sample: duplicates removed, unique (resource_id, metric, at)

Revision ID: i17_telemetry_unique
Revises: i16_reading_ingest

An MQTT message redelivered after its commit but before its acknowledgement (QoS 1) stored
its samples twice. The oldest row of each (resource_id, metric, at) is kept; the unique key
replaces the (resource_id, at) index (every read of the store names the metric).
"""

from alembic import op

revision = "i17_telemetry_unique"
down_revision = "i16_reading_ingest"
branch_labels = None
depends_on = None

KEY = ["resource_id", "metric", "at"]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DELETE FROM der_telemetry AS later USING der_telemetry AS first "
            "WHERE later.resource_id = first.resource_id AND later.metric = first.metric "
            "AND later.at = first.at AND later.id > first.id"
        )
    else:
        op.execute(
            "DELETE FROM der_telemetry WHERE id NOT IN "
            "(SELECT min(id) FROM der_telemetry GROUP BY resource_id, metric, at)"
        )
    op.drop_index("ix_der_telemetry_resource_at", table_name="der_telemetry")
    with op.batch_alter_table("der_telemetry") as batch:
        batch.create_unique_constraint("uq_der_telemetry", KEY)


def downgrade() -> None:
    with op.batch_alter_table("der_telemetry") as batch:
        batch.drop_constraint("uq_der_telemetry", type_="unique")
    op.create_index("ix_der_telemetry_resource_at", "der_telemetry", ["resource_id", "at"])

"""dispatch: DER broker logins, commands to devices with their state, daily runs per VPP

Revision ID: i17_dispatch_commands
Revises: i17_forecast_runs
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "i17_dispatch_commands"
down_revision = "i17_forecast_runs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("der_resources") as batch:
        batch.add_column(
            sa.Column(
                "mqtt_password_hash", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True
            )
        )
    op.create_table(
        "vpp_daily_schedules",
        sa.Column("vpp_id", sa.Uuid(), nullable=False),
        sa.Column("day_start", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("schedule_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["schedule_id"], ["vpp_schedules.id"]),
        sa.ForeignKeyConstraint(["vpp_id"], ["vpps.id"]),
        sa.PrimaryKeyConstraint("vpp_id", "day_start"),
    )
    op.create_table(
        "dispatch_commands",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("vpp_id", sa.Uuid(), nullable=False),
        sa.Column("schedule_id", sa.Uuid(), nullable=True),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("sent_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("ack_by", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("acked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("ack_result", sa.String(length=16), nullable=True),
        sa.Column("detail", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["resource_id"], ["der_resources.id"]),
        sa.ForeignKeyConstraint(["schedule_id"], ["vpp_schedules.id"]),
        sa.ForeignKeyConstraint(["vpp_id"], ["vpps.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_dispatch_commands_vpp_created", "dispatch_commands", ["vpp_id", "created_at"]
    )
    op.create_index("ix_dispatch_commands_state", "dispatch_commands", ["state"])
    op.create_index("ix_dispatch_commands_resource_id", "dispatch_commands", ["resource_id"])


def downgrade() -> None:
    op.drop_index("ix_dispatch_commands_resource_id", table_name="dispatch_commands")
    op.drop_index("ix_dispatch_commands_state", table_name="dispatch_commands")
    op.drop_index("ix_dispatch_commands_vpp_created", table_name="dispatch_commands")
    op.drop_table("dispatch_commands")
    op.drop_table("vpp_daily_schedules")
    with op.batch_alter_table("der_resources") as batch:
        batch.drop_column("mqtt_password_hash")

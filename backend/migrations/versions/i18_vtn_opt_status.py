"""OpenADR VTN: EiOpt schedules (openadr_opts, openadr_opt_windows), which opt decided a
delivery (opt_source, opt_id), and per VEN its revocation, last contact/poll and last
TELEMETRY_STATUS report

Revision ID: i18_vtn_opt_status
Revises: i17_forecast_runs
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "i18_vtn_opt_status"
down_revision = "i17_dispatch_commands"
branch_labels = None
depends_on = None

VEN_COLUMNS = ("revoked_at", "last_contact_at", "last_poll_at", "status_at")


def upgrade() -> None:
    for name in VEN_COLUMNS:
        op.add_column(
            "openadr_vens", sa.Column(name, sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
    op.add_column("openadr_vens", sa.Column("status", sa.JSON(), nullable=True))
    op.add_column(
        "openadr_event_deliveries", sa.Column("opt_source", sa.String(length=8), nullable=True)
    )
    op.add_column(
        "openadr_event_deliveries", sa.Column("opt_id", sa.String(length=64), nullable=True)
    )
    op.create_table(
        "openadr_opts",
        sa.Column("opt_id", sa.String(length=64), nullable=False),
        sa.Column("ven_id", sa.String(length=64), nullable=False),
        sa.Column("opt_type", sa.String(length=8), nullable=False),
        sa.Column("opt_reason", sa.String(length=32), nullable=False),
        sa.Column("market_context", sa.String(length=200), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("cancelled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["ven_id"], ["openadr_vens.ven_id"]),
        sa.PrimaryKeyConstraint("opt_id"),
    )
    op.create_index("ix_openadr_opts_ven_id", "openadr_opts", ["ven_id"])
    op.create_table(
        "openadr_opt_windows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("opt_id", sa.String(length=64), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("end", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["opt_id"], ["openadr_opts.opt_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_openadr_opt_windows_opt_id", "openadr_opt_windows", ["opt_id"])


def downgrade() -> None:
    op.drop_index("ix_openadr_opt_windows_opt_id", table_name="openadr_opt_windows")
    op.drop_table("openadr_opt_windows")
    op.drop_index("ix_openadr_opts_ven_id", table_name="openadr_opts")
    op.drop_table("openadr_opts")
    op.drop_column("openadr_event_deliveries", "opt_id")
    op.drop_column("openadr_event_deliveries", "opt_source")
    op.drop_column("openadr_vens", "status")
    for name in VEN_COLUMNS:
        op.drop_column("openadr_vens", name)

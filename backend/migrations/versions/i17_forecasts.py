"""forecasts: each forecast run stored with its inputs and result

Revision ID: i17_forecast_runs
Revises: i15_poison_dead_letters
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "i17_forecast_runs"
down_revision = "i18_vtn_openadr"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "forecasts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.String(length=66), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=True),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("slot_seconds", sa.Integer(), nullable=False),
        sa.Column("horizon", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=32), nullable=False),
        sa.Column("mae_wh", sa.Float(), nullable=False),
        sa.Column("mape", sa.Float(), nullable=True),
        sa.Column("naive_mae_wh", sa.Float(), nullable=False),
        sa.Column("naive_mape", sa.Float(), nullable=True),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["requested_by"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_forecasts_target", "forecasts", ["target_kind", "target_id", "start"])


def downgrade() -> None:
    op.drop_index("ix_forecasts_target", table_name="forecasts")
    op.drop_table("forecasts")

"""vpp_orders and vpp_allocations: aggregator trading and pro-rata settlement to members

Revision ID: i17_vpp_trading
Revises: i17_forecast_runs
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "i17_vpp_trading"
down_revision = "i18_dr_settlement"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "vpp_orders",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("vpp_id", sa.Uuid(), nullable=False),
        sa.Column("order_hash", sa.String(length=66), nullable=False),
        sa.Column("forecast_id", sa.Uuid(), nullable=True),
        sa.Column("schedule_id", sa.Uuid(), nullable=True),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("meter_id", sa.String(length=66), nullable=False),
        sa.Column("delivery_start", sa.BigInteger(), nullable=False),
        sa.Column("quantity_wh", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("forecast_wh", sa.BigInteger(), nullable=False),
        sa.Column("flexibility_wh", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["vpp_id"], ["vpps.id"]),
        sa.ForeignKeyConstraint(["forecast_id"], ["forecasts.id"]),
        sa.ForeignKeyConstraint(["schedule_id"], ["vpp_schedules.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_hash"),
        sa.UniqueConstraint("vpp_id", "delivery_start", "side", name="uq_vpp_orders_slot_side"),
    )
    op.create_index("ix_vpp_orders_vpp_id", "vpp_orders", ["vpp_id"])
    op.create_index("ix_vpp_orders_meter_id", "vpp_orders", ["meter_id"])
    op.create_table(
        "vpp_allocations",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("vpp_id", sa.Uuid(), nullable=False),
        sa.Column("trade_id", sa.BigInteger(), nullable=False),
        sa.Column("meter_id", sa.String(length=66), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("delivered_wh", sa.BigInteger(), nullable=False),
        sa.Column("payout", sa.BigInteger(), nullable=False),
        sa.Column("penalty", sa.BigInteger(), nullable=False),
        sa.Column("settled_tx", sa.String(length=66), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["vpp_id"], ["vpps.id"]),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("trade_id", "meter_id", name="uq_vpp_allocations_meter"),
    )
    op.create_index("ix_vpp_allocations_vpp_id", "vpp_allocations", ["vpp_id"])
    op.create_index("ix_vpp_allocations_trade_id", "vpp_allocations", ["trade_id"])
    op.create_index("ix_vpp_allocations_account_id", "vpp_allocations", ["account_id"])


def downgrade() -> None:
    op.drop_table("vpp_allocations")
    op.drop_table("vpp_orders")

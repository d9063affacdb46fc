"""indexer mirror tables

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 01:45:34.120456
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "certificate_transfers",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("certificate_id", sa.BigInteger(), nullable=False),
        sa.Column("operator", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("from_account", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("to_account", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("amount_wh", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("certificate_transfers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_certificate_transfers_certificate_id"), ["certificate_id"], unique=False
        )

    op.create_table(
        "certificates",
        sa.Column("certificate_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("device_id", sa.BigInteger(), nullable=False),
        sa.Column("period_start", sa.BigInteger(), nullable=False),
        sa.Column("period_end", sa.BigInteger(), nullable=False),
        sa.Column("volume_wh", sa.BigInteger(), nullable=False),
        sa.Column("claimed_wh", sa.BigInteger(), nullable=False),
        sa.Column("supply_wh", sa.BigInteger(), nullable=False),
        sa.Column("issued_to", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.Column("issued_tx", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("revoke_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("certificate_id"),
    )
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.create_index(
            "ix_certificates_device_period", ["device_id", "period_start"], unique=False
        )

    op.create_table(
        "chain_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
        sa.Column("tx_hash", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.Column("contract", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("event", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("chain_id", "tx_hash", "log_index", name="uq_chain_events_log"),
    )
    with op.batch_alter_table("chain_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_chain_events_chain_block", ["chain_id", "block_number"], unique=False
        )

    op.create_table(
        "claims",
        sa.Column("claim_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("certificate_id", sa.BigInteger(), nullable=False),
        sa.Column("holder", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("amount_wh", sa.BigInteger(), nullable=False),
        sa.Column("beneficiary", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("consumption_start", sa.BigInteger(), nullable=False),
        sa.Column("consumption_end", sa.BigInteger(), nullable=False),
        sa.Column("location", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
        sa.Column("tx_hash", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("claim_id"),
    )
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_claims_certificate_id"), ["certificate_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_claims_holder"), ["holder"], unique=False)

    op.create_table(
        "devices",
        sa.Column("device_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("technology", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("capacity_w", sa.BigInteger(), nullable=False),
        sa.Column("grid_area", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("commissioned_at", sa.BigInteger(), nullable=False),
        sa.Column("meter_id", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device_id"),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_devices_meter_id"), ["meter_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_devices_owner"), ["owner"], unique=False)

    op.create_table(
        "holdings",
        sa.Column("certificate_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("balance_wh", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("certificate_id", "account"),
    )
    op.create_table(
        "maker_nonces",
        sa.Column("maker", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("maker"),
    )
    op.create_table(
        "market_balances",
        sa.Column("account", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("withdrawable", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account"),
    )
    op.create_table(
        "market_orders",
        sa.Column("order_hash", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("maker", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=True),
        sa.Column("side", sa.Integer(), nullable=True),
        sa.Column("product", sa.Integer(), nullable=True),
        sa.Column("asset_id", sa.BigInteger(), nullable=True),
        sa.Column("meter_id", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=True),
        sa.Column("quantity_wh", sa.BigInteger(), nullable=True),
        sa.Column("price", sa.BigInteger(), nullable=True),
        sa.Column("delivery_start", sa.BigInteger(), nullable=True),
        sa.Column("delivery_end", sa.BigInteger(), nullable=True),
        sa.Column("expiry", sa.BigInteger(), nullable=True),
        sa.Column("nonce", sa.BigInteger(), nullable=True),
        sa.Column("salt", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.Column("listed", sa.Boolean(), nullable=False),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.Column("filled_wh", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("order_hash"),
    )
    with op.batch_alter_table("market_orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_market_orders_maker"), ["maker"], unique=False)

    op.create_table(
        "market_parameters",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("topic", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("published_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_unpublished", ["published_at", "id"], unique=False)

    op.create_table(
        "payouts",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("account", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("trade_id", sa.BigInteger(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payouts_account"), ["account"], unique=False)

    op.create_table(
        "role_grants",
        sa.Column("contract", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
        sa.Column("account", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("changed_by", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("contract", "role", "account"),
    )
    op.create_table(
        "token_balances",
        sa.Column("account", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account"),
    )
    op.create_table(
        "trades",
        sa.Column("trade_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("product", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("seller", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("buyer", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("seller_meter", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=True),
        sa.Column("buyer_meter", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=True),
        sa.Column("certificate_id", sa.BigInteger(), nullable=True),
        sa.Column("quantity_wh", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("payment", sa.BigInteger(), nullable=False),
        sa.Column("delivery_start", sa.BigInteger(), nullable=True),
        sa.Column("delivery_end", sa.BigInteger(), nullable=True),
        sa.Column("tolerance_bps", sa.Integer(), nullable=True),
        sa.Column("penalty_bps", sa.Integer(), nullable=True),
        sa.Column("sell_order_hash", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
        sa.Column("buy_order_hash", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
        sa.Column("delivered_wh", sa.BigInteger(), nullable=True),
        sa.Column("seller_payout", sa.BigInteger(), nullable=True),
        sa.Column("penalty", sa.BigInteger(), nullable=True),
        sa.Column("buyer_refund", sa.BigInteger(), nullable=True),
        sa.Column("created_tx", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
        sa.Column("created_block", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("closed_tx", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=True),
        sa.Column("closed_block", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("trade_id"),
    )
    with op.batch_alter_table("trades", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trades_buyer"), ["buyer"], unique=False)
        batch_op.create_index(
            "ix_trades_delivery", ["delivery_start", "delivery_end"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_trades_seller"), ["seller"], unique=False)
        batch_op.create_index(batch_op.f("ix_trades_status"), ["status"], unique=False)

    op.create_table(
        "undo_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("table_name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("key", sa.JSON(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("undo_log", schema=None) as batch_op:
        batch_op.create_index("ix_undo_log_chain_block", ["chain_id", "block_number"], unique=False)

    with op.batch_alter_table("indexer_cursors", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("block_timestamp", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("head_block", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("head_timestamp", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("indexer_cursors", schema=None) as batch_op:
        batch_op.drop_column("head_timestamp")
        batch_op.drop_column("head_block")
        batch_op.drop_column("block_timestamp")

    with op.batch_alter_table("undo_log", schema=None) as batch_op:
        batch_op.drop_index("ix_undo_log_chain_block")

    op.drop_table("undo_log")
    with op.batch_alter_table("trades", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trades_status"))
        batch_op.drop_index(batch_op.f("ix_trades_seller"))
        batch_op.drop_index("ix_trades_delivery")
        batch_op.drop_index(batch_op.f("ix_trades_buyer"))

    op.drop_table("trades")
    op.drop_table("token_balances")
    op.drop_table("role_grants")
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payouts_account"))

    op.drop_table("payouts")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_unpublished")

    op.drop_table("outbox")
    op.drop_table("market_parameters")
    with op.batch_alter_table("market_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_market_orders_maker"))

    op.drop_table("market_orders")
    op.drop_table("market_balances")
    op.drop_table("maker_nonces")
    op.drop_table("holdings")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_devices_owner"))
        batch_op.drop_index(batch_op.f("ix_devices_meter_id"))

    op.drop_table("devices")
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_claims_holder"))
        batch_op.drop_index(batch_op.f("ix_claims_certificate_id"))

    op.drop_table("claims")
    with op.batch_alter_table("chain_events", schema=None) as batch_op:
        batch_op.drop_index("ix_chain_events_chain_block")

    op.drop_table("chain_events")
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_index("ix_certificates_device_period")

    op.drop_table("certificates")
    with op.batch_alter_table("certificate_transfers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificate_transfers_certificate_id"))

    op.drop_table("certificate_transfers")

"""api refresh tokens siwe nonces signed orders

Revision ID: 0004_api
Revises: 0003
Create Date: 2026-11-22 02:11:44.850714
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0004_api"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "siwe_nonces",
        sa.Column("nonce", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("nonce"),
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("family", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_refresh_tokens_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_refresh_tokens_family"), ["family"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_refresh_tokens_token_hash"), ["token_hash"], unique=True
        )

    op.create_table(
        "signed_orders",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("order_hash", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("custodial", sa.Boolean(), nullable=False),
        sa.Column("maker", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("side", sa.Integer(), nullable=False),
        sa.Column("product", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.BigInteger(), nullable=False),
        sa.Column("meter_id", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
        sa.Column("quantity_wh", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("delivery_start", sa.BigInteger(), nullable=False),
        sa.Column("delivery_end", sa.BigInteger(), nullable=False),
        sa.Column("expiry", sa.BigInteger(), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("salt", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("signature", sqlmodel.sql.sqltypes.AutoString(length=140), nullable=False),
        sa.Column("matched_wh", sa.BigInteger(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("cancel_tx", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("signed_orders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_signed_orders_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(
            "ix_signed_orders_book",
            ["status", "product", "asset_id", "delivery_start", "side", "price"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_signed_orders_maker"), ["maker"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_signed_orders_order_hash"), ["order_hash"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("signed_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signed_orders_order_hash"))
        batch_op.drop_index(batch_op.f("ix_signed_orders_maker"))
        batch_op.drop_index("ix_signed_orders_book")
        batch_op.drop_index(batch_op.f("ix_signed_orders_account_id"))

    op.drop_table("signed_orders")
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refresh_tokens_token_hash"))
        batch_op.drop_index(batch_op.f("ix_refresh_tokens_family"))
        batch_op.drop_index(batch_op.f("ix_refresh_tokens_account_id"))

    op.drop_table("refresh_tokens")
    op.drop_table("siwe_nonces")

"""market_balances.locked: seller collateral locked in the market

Revision ID: 0008_i12_collateral
Revises: i12_signed_readings
EnergyMarket keeps one balance per account (deposits plus credits); an ENERGY fill locks part of
the seller's as collateral. The mirror keeps the free part (`withdrawable`) and the locked part.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_i12_collateral"
down_revision = "i12_signed_readings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "market_balances",
        sa.Column("locked", sa.BigInteger(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("market_balances") as batch:
        batch.drop_column("locked")

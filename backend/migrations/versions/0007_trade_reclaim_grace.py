"""trades.reclaim_grace_period: the reclaim grace period fixed in each ENERGY trade

Revision ID: 0007
Revises: 0006
The EnergyMarket records the grace period in force when a trade is made in the trade itself
(settle and reclaim take it back with the struct); the mirror keeps it per trade.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("trades", sa.Column("reclaim_grace_period", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trades") as batch:
        batch.drop_column("reclaim_grace_period")

"""token_allowances, operator_approvals: the indexer's mirror of GridUSD allowances to our
contracts and of RECRegistry operator approvals (order intake checks bids and REC offers on it)

Revision ID: i16_allowances
Revises: i18_resource_moves
Both start empty: an owner without a row is asked of the chain, so intake stays right until the
next Approval / ApprovalForAll of each owner, or `python -m indexer rebuild` fills them from the
chain's history at once.
"""

import sqlalchemy as sa
from alembic import op

revision = "i16_allowances"
down_revision = "i18_resource_moves"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "token_allowances",
        sa.Column("owner", sa.String(length=42), nullable=False),
        sa.Column("spender", sa.String(length=42), nullable=False),
        sa.Column("allowance", sa.BigInteger(), nullable=False),
        sa.Column("unlimited", sa.Boolean(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("owner", "spender"),
    )
    op.create_table(
        "operator_approvals",
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("operator", sa.String(length=42), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account", "operator"),
    )


def downgrade() -> None:
    op.drop_table("operator_approvals")
    op.drop_table("token_allowances")

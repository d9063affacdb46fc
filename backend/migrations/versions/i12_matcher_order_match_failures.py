"""signed_orders.match_failures and withdrawn_reason: the matcher withdraws orders that jam it

Revision ID: i12_matcher
Revises: 0008_audit
An order whose matches the chain keeps rejecting (revoked allowance, a reverting ERC-1155
receiver, missing collateral, ...) counts its failed simulations; at the limit the matcher
withdraws it and tells its maker why.
"""

import sqlalchemy as sa
from alembic import op

revision = "i12_matcher"
down_revision = "0008_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "signed_orders",
        sa.Column("match_failures", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column("signed_orders", sa.Column("withdrawn_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signed_orders") as batch:
        batch.drop_column("withdrawn_reason")
        batch.drop_column("match_failures")

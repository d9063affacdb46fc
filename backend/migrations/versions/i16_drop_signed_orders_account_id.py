"""signed_orders: drop ix_signed_orders_account_id (covered by (account_id, seq))

Revision ID: i16_drop_signed_orders_acct_id
Revises: i16_runs_locked_writes

`ix_signed_orders_account_seq` answers every lookup by account (its leading column), so the
single-column index only cost each order insert a second index update on the account.
"""

from alembic import op

revision = "i16_drop_signed_orders_acct_id"  # alembic_version holds 32 characters
down_revision = "i16_runs_locked_writes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_signed_orders_account_id", table_name="signed_orders")


def downgrade() -> None:
    op.create_index("ix_signed_orders_account_id", "signed_orders", ["account_id"])

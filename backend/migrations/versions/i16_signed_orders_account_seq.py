"""signed_orders (account_id, seq): an account's orders, newest first, by index

Revision ID: i16_signed_orders_account_seq
Revises: i16_allowances

"My orders" (backend/market/account_orders.py `my_orders_query`) reads an account's orders by
descending seq, a page at a time. With this index one plan fits every account and cursor, so
the async read path lets PostgreSQL keep the statement's generic plan instead of planning it
for each request (backend/core/async_db.py `Query.generic_plan`).
"""

from alembic import op

revision = "i16_signed_orders_account_seq"
down_revision = "i16_allowances"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_signed_orders_account_seq", "signed_orders", ["account_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_signed_orders_account_seq", table_name="signed_orders")

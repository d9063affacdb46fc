"""signed_orders (maker, seq): the orders a maker placed since a given one, by index

Revision ID: i16_signed_orders_maker_seq
Revises: i17_telemetry_unique

The group commit of orders (backend/market/order_writer.py) keeps each maker's reserved
collateral and reads only the orders placed after the last one it counted.
"""

from alembic import op

revision = "i16_signed_orders_maker_seq"
down_revision = "i17_telemetry_unique"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_signed_orders_maker_seq", "signed_orders", ["maker", "seq"])


def downgrade() -> None:
    op.drop_index("ix_signed_orders_maker_seq", table_name="signed_orders")

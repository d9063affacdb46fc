"""VPP flexibility delivery: what each order relies on per battery and slot
(vpp_orders.flex_wh, flex_split, patched_fill_wh) and patch schedules (vpp_schedules.kind,
parent_id)

Revision ID: i18_vpp_flex
Revises: i16_signed_orders_account_seq
"""

import sqlalchemy as sa
from alembic import op

revision = "i18_vpp_flex"
down_revision = "i16_signed_orders_account_seq"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "vpp_orders", sa.Column("flex_wh", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column(
        "vpp_orders", sa.Column("flex_split", sa.JSON(), nullable=False, server_default="[]")
    )
    op.add_column(
        "vpp_orders",
        sa.Column("patched_fill_wh", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.add_column(
        "vpp_schedules",
        sa.Column("kind", sa.String(length=8), nullable=False, server_default="plan"),
    )
    with op.batch_alter_table("vpp_schedules") as batch:  # SQLite alters by copy and move
        batch.add_column(sa.Column("parent_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            "fk_vpp_schedules_parent_id", "vpp_schedules", ["parent_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("vpp_schedules") as batch:
        batch.drop_constraint("fk_vpp_schedules_parent_id", type_="foreignkey")
        batch.drop_column("parent_id")
    op.drop_column("vpp_schedules", "kind")
    op.drop_column("vpp_orders", "patched_fill_wh")
    op.drop_column("vpp_orders", "flex_split")
    op.drop_column("vpp_orders", "flex_wh")

"""Order signatures of any length: contract wallets (ERC-1271) sign with more than 65 bytes.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signed_orders") as batch:
        batch.alter_column(
            "signature", type_=sa.Text(), existing_type=sa.String(140), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("signed_orders") as batch:
        batch.alter_column(
            "signature", type_=sa.String(140), existing_type=sa.Text(), existing_nullable=False
        )

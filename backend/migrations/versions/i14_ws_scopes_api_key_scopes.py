"""api_keys.scopes and api_keys.expires_at

Revision ID: i14_ws_scopes_api_keys
Revises: 0008_i12_collateral
API keys carry scopes (read, trade, certificates, meter-data) and an expiry. Keys made before
keep every scope and never expire (what they could do when they were issued); new keys get the
scopes and expiry asked for at creation.
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "i14_ws_scopes_api_keys"
down_revision = "0008_i12_collateral"
branch_labels = None
depends_on = None

EVERY_SCOPE = '["read", "trade", "certificates", "meter-data"]'


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(
            sa.Column(
                "scopes", sa.JSON(), nullable=False, server_default=sa.text(f"'{EVERY_SCOPE}'")
            )
        )
        batch.add_column(
            sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("scopes")

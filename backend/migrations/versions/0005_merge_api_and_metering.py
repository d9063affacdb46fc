"""Merge the API (0004_api) and metering (0004_metering) branches of the schema.

Revision ID: 0005
Revises: 0004_api, 0004_metering
"""

revision = "0005"
down_revision = ("0004_api", "0004_metering")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

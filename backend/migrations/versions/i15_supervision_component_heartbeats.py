"""component_heartbeats: the last moment each long-running component showed it was working

Revision ID: i15_supervision_heartbeats
Revises: 0008_i12_collateral
The matcher, the MQTT subscriber and the beat rewrite their row while they work; /health
reports a component whose row has gone stale as degraded.
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "i15_supervision_heartbeats"
down_revision = "i14_ws_scopes_api_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "component_heartbeats",
        sa.Column("component", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("beat_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.PrimaryKeyConstraint("component"),
    )


def downgrade() -> None:
    op.drop_table("component_heartbeats")

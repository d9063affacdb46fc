"""dead_letters: messages that could not be processed (poison), acknowledged and kept for operators

Revision ID: i15_poison_dead_letters
Revises: 0008_i12_collateral
One row per distinct message (source, topic, payload digest); a repeat counts.
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "i15_poison_dead_letters"
down_revision = "i17_der"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("topic", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("payload_size", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("first_seen", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_seen", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("digest", name="uq_dead_letters_digest"),
    )
    op.create_index("ix_dead_letters_source", "dead_letters", ["source"])


def downgrade() -> None:
    op.drop_index("ix_dead_letters_source", "dead_letters")
    op.drop_table("dead_letters")

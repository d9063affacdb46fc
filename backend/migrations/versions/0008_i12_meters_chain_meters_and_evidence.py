"""chain_meters mirror (RECRegistry MeterApproved / MeterSuspended) and certificates.evidence_root

Revision ID: i12_meters_chain
Revises: i12_matcher
Meters are approved on chain with their capacity and signing key; the indexer mirrors them.
Every certificate commits to the Merkle root of the signed readings behind it
(`CertificateIssued.evidenceRoot`, emitted, not stored on chain); the mirror keeps it.
"""

import sqlalchemy as sa
from alembic import op

revision = "i12_meters_chain"
down_revision = "i12_matcher"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chain_meters",
        sa.Column("meter_id", sa.String(length=66), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(length=42), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("capacity_w", sa.BigInteger(), nullable=False),
        sa.Column("signing_key", sa.String(length=42), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("meter_id"),
    )
    with op.batch_alter_table("chain_meters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chain_meters_owner"), ["owner"], unique=False)
    op.add_column(
        "certificates",
        sa.Column("evidence_root", sa.String(length=66), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.drop_column("evidence_root")
    with op.batch_alter_table("chain_meters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chain_meters_owner"))
    op.drop_table("chain_meters")

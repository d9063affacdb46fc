"""Meter approval and signed readings: meter status and signing key, verified readings

Revision ID: i12_signed_readings
Revises: i12_meters_chain
Meters gain a registrar approval (status, signing key, approved capacity, by whom, when);
readings and their corrections record whether they are verified (meter-signed or posted by a
metering data provider), the signature and the signer; a reconciliation counts the slots it
treated as missing because only unverified readings covered them. Meters registered before
this revision are pending: nothing they sent is verified until a registrar approves them.
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "i12_signed_readings"
down_revision = "i12_meters_chain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("meters") as batch:
        batch.add_column(
            sa.Column("status", sa.String(16), nullable=False, server_default="pending")
        )
        batch.add_column(sa.Column("signing_key", sa.String(42), nullable=True))
        batch.add_column(sa.Column("approved_capacity_w", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("approved_by", sa.Uuid(), nullable=True))
        batch.add_column(
            sa.Column("approved_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch.create_foreign_key(
            "fk_meters_approved_by_accounts", "accounts", ["approved_by"], ["id"]
        )
    with op.batch_alter_table("meter_readings") as batch:
        batch.add_column(
            sa.Column("verified", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("signature", sa.String(132), nullable=True))
        batch.add_column(sa.Column("signer", sa.String(42), nullable=True))
    with op.batch_alter_table("reading_corrections") as batch:
        batch.add_column(
            sa.Column("previous_verified", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("previous_signer", sa.String(42), nullable=True))
        batch.add_column(
            sa.Column("verified", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("signer", sa.String(42), nullable=True))
    op.add_column(
        "reconciliations",
        sa.Column("unverified_slots", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("reconciliations") as batch:
        batch.drop_column("unverified_slots")
    with op.batch_alter_table("reading_corrections") as batch:
        for column in ("signer", "verified", "previous_signer", "previous_verified"):
            batch.drop_column(column)
    with op.batch_alter_table("meter_readings") as batch:
        for column in ("signer", "signature", "verified"):
            batch.drop_column(column)
    with op.batch_alter_table("meters") as batch:
        batch.drop_constraint("fk_meters_approved_by_accounts", type_="foreignkey")
        for column in (
            "approved_at",
            "approved_by",
            "approved_capacity_w",
            "signing_key",
            "status",
        ):
            batch.drop_column(column)

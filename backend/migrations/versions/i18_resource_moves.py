"""DER resource moves (der_resource_moves): behind which meter a resource sat, and when

Revision ID: i18_resource_moves
Revises: i16_reading_runs

REC issuance refuses the hours in which a battery or EV charger sat behind a REC device's
meter. With only `der_resources.meter_id` it saw the current meter: a battery moved off a PV
meter let that meter's earlier hours through. Each move is now kept (and audited as
`resources.moved`); a resource never moved has no row, so existing resources need no backfill.
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "i18_resource_moves"
down_revision = "i16_reading_runs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "der_resource_moves",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("from_meter_id", sa.String(length=66), nullable=False),
        sa.Column("to_meter_id", sa.String(length=66), nullable=False),
        sa.Column("moved_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("moved_by", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["resource_id"], ["der_resources.id"]),
        sa.ForeignKeyConstraint(["from_meter_id"], ["meters.meter_id"]),
        sa.ForeignKeyConstraint(["to_meter_id"], ["meters.meter_id"]),
        sa.ForeignKeyConstraint(["moved_by"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_der_resource_moves_resource_at", "der_resource_moves", ["resource_id", "moved_at"]
    )
    op.create_index("ix_der_resource_moves_from_meter_id", "der_resource_moves", ["from_meter_id"])
    op.create_index("ix_der_resource_moves_to_meter_id", "der_resource_moves", ["to_meter_id"])


def downgrade() -> None:
    op.drop_table("der_resource_moves")

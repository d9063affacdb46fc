"""DER registry (der_resources, der_telemetry), VPPs (vpps), consent (vpp_memberships), schedules

Revision ID: i17_der
Revises: 0008_i12_collateral
A resource sits behind a meter its owner owns; power in W, energy in Wh (BIGINT). A VPP is run
by an aggregator; a membership row is the resource owner's consent, ended (`left_at`) when the
owner leaves, the aggregator removes it, the resource is decommissioned or the VPP dissolved.
A resource is in at most one VPP at a time (partial unique index on open memberships).
vpp_schedules keeps each optimisation with its inputs, so a schedule can be explained later.
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "i17_der"
down_revision = "i15_supervision_heartbeats"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "der_resources",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("meter_id", sa.String(length=66), nullable=False),
        sa.Column("grid_area", sa.String(length=32), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("capacity_w", sa.BigInteger(), nullable=False),
        sa.Column("energy_capacity_wh", sa.BigInteger(), nullable=True),
        sa.Column("max_charge_w", sa.BigInteger(), nullable=False),
        sa.Column("max_discharge_w", sa.BigInteger(), nullable=False),
        sa.Column("min_soc_wh", sa.BigInteger(), nullable=True),
        sa.Column("max_soc_wh", sa.BigInteger(), nullable=True),
        sa.Column("charge_efficiency", sa.Float(), nullable=False),
        sa.Column("discharge_efficiency", sa.Float(), nullable=False),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("output_w", sa.BigInteger(), nullable=True),
        sa.Column("soc_wh", sa.BigInteger(), nullable=True),
        sa.Column("state_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("decommissioned_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["owner_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["meter_id"], ["meters.meter_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_der_resources_owner_id", "der_resources", ["owner_id"])
    op.create_index("ix_der_resources_meter_id", "der_resources", ["meter_id"])
    op.create_index("ix_der_resources_kind_area", "der_resources", ["kind", "grid_area"])
    op.create_table(
        "der_telemetry",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("metric", sa.String(length=8), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=64), nullable=True),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["resource_id"], ["der_resources.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_der_telemetry_resource_at", "der_telemetry", ["resource_id", "at"])
    op.create_table(
        "vpps",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("aggregator_id", sa.Uuid(), nullable=False),
        sa.Column("grid_area", sa.String(length=32), nullable=True),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("dissolved_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["aggregator_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_vpps_aggregator_id", "vpps", ["aggregator_id"])
    op.create_table(
        "vpp_memberships",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("vpp_id", sa.Uuid(), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("consented_by", sa.Uuid(), nullable=False),
        sa.Column("joined_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("left_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("ended_by", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(["vpp_id"], ["vpps.id"]),
        sa.ForeignKeyConstraint(["resource_id"], ["der_resources.id"]),
        sa.ForeignKeyConstraint(["consented_by"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_vpp_memberships_vpp_id", "vpp_memberships", ["vpp_id"])
    op.create_index(
        "uq_vpp_memberships_open_resource",
        "vpp_memberships",
        ["resource_id"],
        unique=True,
        postgresql_where=sa.text("left_at IS NULL"),
        sqlite_where=sa.text("left_at IS NULL"),
    )

    op.create_table(
        "vpp_schedules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("vpp_id", sa.Uuid(), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("slot_seconds", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cost", sa.BigInteger(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["vpp_id"], ["vpps.id"]),
        sa.ForeignKeyConstraint(["requested_by"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_vpp_schedules_vpp_id", "vpp_schedules", ["vpp_id"])


def downgrade() -> None:
    op.drop_index("ix_vpp_schedules_vpp_id", table_name="vpp_schedules")
    op.drop_table("vpp_schedules")
    op.drop_index("uq_vpp_memberships_open_resource", table_name="vpp_memberships")
    op.drop_index("ix_vpp_memberships_vpp_id", table_name="vpp_memberships")
    op.drop_table("vpp_memberships")
    op.drop_index("ix_vpps_aggregator_id", table_name="vpps")
    op.drop_table("vpps")
    op.drop_index("ix_der_telemetry_resource_at", table_name="der_telemetry")
    op.drop_table("der_telemetry")
    op.drop_index("ix_der_resources_kind_area", table_name="der_resources")
    op.drop_index("ix_der_resources_meter_id", table_name="der_resources")
    op.drop_index("ix_der_resources_owner_id", table_name="der_resources")
    op.drop_table("der_resources")

"""dr_settlements, dr_vpp_notifications, dr_offers: DR results posted on chain, events told
to VPPs, DR capacity offers (ITU-T Y.2072 trading); the indexer's DemandResponse mirror
(dr_chain_programs, dr_chain_results, dr_chain_balances)

Revision ID: i18_dr_settlement
Revises: i17_forecast_runs
Money in token units (BIGINT), power in W, times unix seconds. One settlement row per
(event, account): the contract settles an (event, participant address) once.
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "i18_dr_settlement"
down_revision = "i18_vtn_opt_status"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dr_settlements",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("credited_wh", sa.BigInteger(), nullable=False),
        sa.Column("shortfall_wh", sa.BigInteger(), nullable=False),
        sa.Column("incentive", sa.BigInteger(), nullable=False),
        sa.Column("penalty", sa.BigInteger(), nullable=False),
        sa.Column("data_missing", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=True),
        sa.Column("settled_tx", sa.String(length=66), nullable=True),
        sa.Column("failure", sa.String(length=500), nullable=True),
        sa.Column("computed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("settled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["dr_events.id"]),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", "account_id", name="uq_dr_settlements"),
    )
    op.create_index("ix_dr_settlements_event_id", "dr_settlements", ["event_id"])
    op.create_index("ix_dr_settlements_account_id", "dr_settlements", ["account_id"])
    op.create_index("ix_dr_settlements_status", "dr_settlements", ["status"])
    op.create_index("ix_dr_settlements_batch_id", "dr_settlements", ["batch_id"])
    op.create_table(
        "dr_vpp_notifications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("vpp_id", sa.Uuid(), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("end", sa.BigInteger(), nullable=False),
        sa.Column("committed_w", sa.BigInteger(), nullable=False),
        sa.Column("resources", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["dr_events.id"]),
        sa.ForeignKeyConstraint(["vpp_id"], ["vpps.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", "vpp_id", name="uq_dr_vpp_notifications"),
    )
    op.create_index("ix_dr_vpp_notifications_event_id", "dr_vpp_notifications", ["event_id"])
    op.create_index("ix_dr_vpp_notifications_vpp_id", "dr_vpp_notifications", ["vpp_id"])
    op.create_table(
        "dr_offers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("aggregator_id", sa.Uuid(), nullable=False),
        sa.Column("meter_id", sa.String(length=66), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=True),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("end", sa.BigInteger(), nullable=False),
        sa.Column("capacity_w", sa.BigInteger(), nullable=False),
        sa.Column("price_per_kwh", sa.BigInteger(), nullable=False),
        sa.Column("penalty_per_kwh", sa.BigInteger(), nullable=False),
        sa.Column("baseline_method", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("accepted_by", sa.Uuid(), nullable=True),
        sa.Column("program_id", sa.Uuid(), nullable=True),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("accepted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["aggregator_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["meter_id"], ["meters.meter_id"]),
        sa.ForeignKeyConstraint(["resource_id"], ["der_resources.id"]),
        sa.ForeignKeyConstraint(["accepted_by"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["program_id"], ["dr_programs.id"]),
        sa.ForeignKeyConstraint(["event_id"], ["dr_events.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_dr_offers_aggregator_id", "dr_offers", ["aggregator_id"])
    op.create_index("ix_dr_offers_status", "dr_offers", ["status"])
    op.create_table(
        "dr_chain_programs",
        sa.Column("program_id", sa.String(length=66), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("utility", sa.String(length=42), nullable=False),
        sa.Column("budget", sa.BigInteger(), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("program_id"),
    )
    op.create_table(
        "dr_chain_results",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("program_id", sa.String(length=66), nullable=False),
        sa.Column("event_id", sa.String(length=66), nullable=False),
        sa.Column("participant", sa.String(length=42), nullable=False),
        sa.Column("incentive", sa.BigInteger(), nullable=False),
        sa.Column("penalty_owed", sa.BigInteger(), nullable=False),
        sa.Column("penalty_charged", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", "participant", name="uq_dr_chain_results"),
    )
    op.create_index("ix_dr_chain_results_program_id", "dr_chain_results", ["program_id"])
    op.create_index("ix_dr_chain_results_participant", "dr_chain_results", ["participant"])
    op.create_table(
        "dr_chain_balances",
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("withdrawable", sa.BigInteger(), nullable=False),
        sa.Column("collateral", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account"),
    )


def downgrade() -> None:
    op.drop_table("dr_chain_balances")
    op.drop_table("dr_chain_results")
    op.drop_table("dr_chain_programs")
    op.drop_table("dr_offers")
    op.drop_table("dr_vpp_notifications")
    op.drop_table("dr_settlements")

"""OpenADR VTN: known VENs (openadr_vens, openadr_ven_meters), events and their deliveries with
each VEN's opt answer (openadr_events, openadr_event_deliveries), report values
(openadr_report_values, provenance `openadr`)

Revision ID: i18_vtn_openadr
Revises: i15_poison_dead_letters
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "i18_vtn_openadr"
down_revision = "i18_dr_programs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "openadr_vens",
        sa.Column("ven_id", sa.String(length=64), nullable=False),
        sa.Column("ven_name", sa.String(length=120), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("cert_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("registration_id", sa.String(length=64), nullable=True),
        sa.Column("registered_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("ven_id"),
        sa.UniqueConstraint("ven_name"),
    )
    op.create_index("ix_openadr_vens_account_id", "openadr_vens", ["account_id"])
    op.create_table(
        "openadr_ven_meters",
        sa.Column("ven_id", sa.String(length=64), nullable=False),
        sa.Column("meter_id", sa.String(length=66), nullable=False),
        sa.ForeignKeyConstraint(["ven_id"], ["openadr_vens.ven_id"]),
        sa.ForeignKeyConstraint(["meter_id"], ["meters.meter_id"]),
        sa.PrimaryKeyConstraint("ven_id", "meter_id"),
    )
    op.create_table(
        "openadr_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("signal_name", sa.String(length=32), nullable=False),
        sa.Column("signal_type", sa.String(length=32), nullable=False),
        sa.Column("market_context", sa.String(length=200), nullable=False),
        sa.Column("intervals", sa.JSON(), nullable=False),
        sa.Column("reference", sa.String(length=120), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "openadr_event_deliveries",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("ven_id", sa.String(length=64), nullable=False),
        sa.Column("queued_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("opt_type", sa.String(length=8), nullable=True),
        sa.Column("opted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["openadr_events.id"]),
        sa.ForeignKeyConstraint(["ven_id"], ["openadr_vens.ven_id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", "ven_id", name="uq_openadr_delivery"),
    )
    op.create_index(
        "ix_openadr_event_deliveries_event_id", "openadr_event_deliveries", ["event_id"]
    )
    op.create_index("ix_openadr_event_deliveries_ven_id", "openadr_event_deliveries", ["ven_id"])
    op.create_table(
        "openadr_report_values",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ven_id", sa.String(length=64), nullable=False),
        sa.Column("meter_id", sa.String(length=66), nullable=True),
        sa.Column("resource_id", sa.String(length=120), nullable=False),
        sa.Column("measurement", sa.String(length=64), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=True),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["ven_id"], ["openadr_vens.ven_id"]),
        sa.ForeignKeyConstraint(["meter_id"], ["meters.meter_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_openadr_report_values_ven_at", "openadr_report_values", ["ven_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_openadr_report_values_ven_at", "openadr_report_values")
    op.drop_table("openadr_report_values")
    op.drop_index("ix_openadr_event_deliveries_ven_id", "openadr_event_deliveries")
    op.drop_index("ix_openadr_event_deliveries_event_id", "openadr_event_deliveries")
    op.drop_table("openadr_event_deliveries")
    op.drop_table("openadr_events")
    op.drop_table("openadr_ven_meters")
    op.drop_index("ix_openadr_vens_account_id", "openadr_vens")
    op.drop_table("openadr_vens")

"""dr_programs, dr_enrolments, dr_events, dr_participations: demand-response programs and events

Revision ID: i18_dr_programs
Revises: i15_poison_dead_letters
Money in token units per kWh, power in W (BIGINT); event times unix seconds on 15-minute
boundaries. A meter is enrolled in a program at most once at a time (partial unique index on
open enrolments); withdrawals, cancellations and opt-outs are timestamps, never deletions.
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "i18_dr_programs"
down_revision = "i15_poison_dead_letters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dr_programs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("program_type", sa.String(length=16), nullable=False),
        sa.Column("operator_id", sa.Uuid(), nullable=False),
        sa.Column("incentive_per_kwh", sa.BigInteger(), nullable=False),
        sa.Column("penalty_per_kwh", sa.BigInteger(), nullable=False),
        sa.Column("notification_lead_s", sa.BigInteger(), nullable=False),
        sa.Column("max_events", sa.Integer(), nullable=False),
        sa.Column("baseline_method", sa.String(length=24), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["operator_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_dr_programs_operator_id", "dr_programs", ["operator_id"])
    op.create_table(
        "dr_enrolments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("meter_id", sa.String(length=66), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=True),
        sa.Column("committed_w", sa.BigInteger(), nullable=False),
        sa.Column("enrolled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("withdrawn_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["program_id"], ["dr_programs.id"]),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["meter_id"], ["meters.meter_id"]),
        sa.ForeignKeyConstraint(["resource_id"], ["der_resources.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_dr_enrolments_program_id", "dr_enrolments", ["program_id"])
    op.create_index("ix_dr_enrolments_account_id", "dr_enrolments", ["account_id"])
    op.create_index(
        "uq_dr_enrolments_open_meter",
        "dr_enrolments",
        ["program_id", "meter_id"],
        unique=True,
        postgresql_where=sa.text("withdrawn_at IS NULL"),
        sqlite_where=sa.text("withdrawn_at IS NULL"),
    )
    op.create_table(
        "dr_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("end", sa.BigInteger(), nullable=False),
        sa.Column("signal_type", sa.String(length=24), nullable=False),
        sa.Column("signal_value", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("cancelled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["program_id"], ["dr_programs.id"]),
        sa.ForeignKeyConstraint(["created_by"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_dr_events_program_id", "dr_events", ["program_id"])
    op.create_index("ix_dr_events_start", "dr_events", ["start"])
    op.create_table(
        "dr_participations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("enrolment_id", sa.Uuid(), nullable=False),
        sa.Column("committed_w", sa.BigInteger(), nullable=False),
        sa.Column("opted_out_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("opt_out_reason", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["dr_events.id"]),
        sa.ForeignKeyConstraint(["enrolment_id"], ["dr_enrolments.id"]),
        sa.UniqueConstraint("event_id", "enrolment_id", name="uq_dr_participations"),
    )
    op.create_index("ix_dr_participations_event_id", "dr_participations", ["event_id"])
    op.create_index("ix_dr_participations_enrolment_id", "dr_participations", ["enrolment_id"])


def downgrade() -> None:
    op.drop_index("ix_dr_participations_enrolment_id", table_name="dr_participations")
    op.drop_index("ix_dr_participations_event_id", table_name="dr_participations")
    op.drop_table("dr_participations")
    op.drop_index("ix_dr_events_start", table_name="dr_events")
    op.drop_index("ix_dr_events_program_id", table_name="dr_events")
    op.drop_table("dr_events")
    op.drop_index("uq_dr_enrolments_open_meter", table_name="dr_enrolments")
    op.drop_index("ix_dr_enrolments_account_id", table_name="dr_enrolments")
    op.drop_index("ix_dr_enrolments_program_id", table_name="dr_enrolments")
    op.drop_table("dr_enrolments")
    op.drop_index("ix_dr_programs_operator_id", table_name="dr_programs")
    op.drop_table("dr_programs")

"""reading_runs: no exclusion constraint; writers keep runs apart under their (meter, day) locks

Revision ID: i16_runs_locked_writes
Revises: i18_vpp_flex

The GiST exclusion constraint `reading_runs_no_overlap` cost ~64 us of PostgreSQL CPU per
inserted run (6.5 us without it): with several MQTT subscribers a meter-day's readings are dealt
round-robin and stored as runs of 1-5 readings, so the constraint was most of the insert cost.
Every writer now takes the advisory locks of its (meter, day) pairs before it reads what is
stored and writes only intervals it found free: the COPY of new runs (backend/meters/runs.py,
after an overlap check), the merge, the view's triggers and the compaction. The primary key
(meter_id, day, first_slot) stays. Downgrade puts the constraint back (it fails if runs overlap).

A lock per pair cannot serve a batch of many meter-days (PostgreSQL's shared lock table holds
about 64 locks per connection: 100,000 pairs are out of shared memory), so the locks are two
levels: every writer first takes the runs key (`hashtextextended('reading_runs', 0)`) shared,
then its pairs; a batch of more pairs than `runs.LOCK_PAIRS_MAX` takes the runs key exclusive
instead and no pair. `reading_runs_lock_pairs` takes a batch's locks in that order in one call
(a SQL function runs its statements in order); `reading_runs_lock`, the view triggers' lock,
takes the runs key shared first too.
"""

from alembic import op

revision = "i16_runs_locked_writes"
down_revision = "i18_vpp_flex"
branch_labels = None
depends_on = None


RUNS_KEY = "hashtextextended('reading_runs', 0)"
PAIR_KEY = "hashtextextended({meter} || ':' || {day}::text, 0)"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE reading_runs DROP CONSTRAINT reading_runs_no_overlap")
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION reading_runs_lock(meter varchar, day bigint) RETURNS void
        LANGUAGE sql AS $$
            SELECT pg_advisory_xact_lock_shared({RUNS_KEY});
            SELECT pg_advisory_xact_lock({PAIR_KEY.format(meter="meter", day="day")})
        $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION reading_runs_lock_pairs(meters text[], days int8[]) RETURNS bigint
        LANGUAGE sql AS $$
            SELECT pg_advisory_xact_lock_shared({RUNS_KEY});
            SELECT count(pg_advisory_xact_lock(k)) FROM (
                SELECT DISTINCT {PAIR_KEY.format(meter="m", day="d")} AS k
                FROM unnest(meters, days) AS t(m, d) ORDER BY k
            ) AS keys
        $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION reading_runs_lock_pairs(text[], int8[])")
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION reading_runs_lock(meter varchar, day bigint) RETURNS void
        LANGUAGE sql AS $$
            SELECT pg_advisory_xact_lock({PAIR_KEY.format(meter="meter", day="day")})
        $$
        """
    )
    op.execute(
        "ALTER TABLE reading_runs ADD CONSTRAINT reading_runs_no_overlap EXCLUDE USING gist ("
        "meter_id WITH =, day WITH =, int4range(first_slot, first_slot + slots) WITH &&)"
    )

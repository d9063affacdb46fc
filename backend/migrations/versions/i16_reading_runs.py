"""Meter readings stored as interval runs on PostgreSQL; `meter_readings` becomes a view

Revision ID: i16_reading_runs
Revises: i17_telemetry_key

Issue 16 asks for 500,000 readings/s; a binary COPY into the row-per-reading table tops out
at ~250-350k rows/s on the 2-core machine (one heap tuple and one B-tree entry per reading).
`reading_runs` holds one row per meter, UTC day and run of consecutive 15-minute intervals,
every reading field an array indexed by the interval's place in the run (an array that is
NULL holds NULL for every interval), so a 10,000-reading batch is ~200 rows.

- No interval is stored twice: runs of a meter and day never overlap (an exclusion
  constraint, btree_gist), and writers take per-(meter, day) advisory transaction locks
  (`backend/meters/runs.py`, the triggers below) before they read what is stored.
- `meter_readings` is a view with the table's columns (plus `day`) that unnests the runs, so
  every reader keeps working; INSTEAD OF triggers make INSERT, UPDATE and DELETE on it change
  the runs (a slow path for ORM writes and the merge of corrections; the ingest COPYs runs).
SQLite (`make run`) keeps the row table.
"""

from alembic import op

revision = "i16_reading_runs"
down_revision = "i17_telemetry_key"
branch_labels = None
depends_on = None

FIELDS = (
    "import_wh, export_wh, voltage_v, current_a, power_factor, quality, revision, source, "
    "verified, signature, signer, received_at"
)
DAY_OF = "({t} - mod(mod({t}, 86400) + 86400, 86400))"  # the UTC day's first second

UPGRADE = [
    # the extension in `public`: one per database, whatever schema migrates (tests use many)
    "CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public",
    """
    CREATE TABLE reading_runs (
        meter_id varchar(66) NOT NULL,
        day bigint NOT NULL,
        first_slot smallint NOT NULL,
        slots smallint NOT NULL,
        import_wh int8[],
        export_wh int8[],
        voltage_v float8[],
        current_a float8[],
        power_factor float8[],
        quality text[],
        revision int4[] NOT NULL,
        source text[] NOT NULL,
        verified bool[] NOT NULL,
        signature text[],
        signer text[],
        received_at timestamptz[] NOT NULL,
        CONSTRAINT reading_runs_pkey PRIMARY KEY (meter_id, day, first_slot),
        CONSTRAINT reading_runs_slots CHECK (
            first_slot >= 0 AND slots >= 1 AND first_slot + slots <= 96
            AND cardinality(revision) = slots AND cardinality(verified) = slots
            AND cardinality(source) = slots AND cardinality(received_at) = slots),
        CONSTRAINT reading_runs_no_overlap EXCLUDE USING gist (
            meter_id WITH =, day WITH =, int4range(first_slot, first_slot + slots) WITH &&)
    ) WITH (toast_tuple_target = 8160)
    """,
    # set element i of an n-element array that may be NULL (NULL: every element NULL)
    """
    CREATE FUNCTION reading_runs_put(arr anyarray, n int, i int, v anyelement)
    RETURNS anyarray LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN
        IF arr IS NULL THEN
            IF v IS NULL THEN
                RETURN NULL;
            END IF;
            RETURN (SELECT array_agg(CASE WHEN j = i THEN v END ORDER BY j)
                    FROM generate_series(1, n) AS j);
        END IF;
        arr[i] := v;
        RETURN arr;
    END $$
    """,
    """
    CREATE FUNCTION reading_runs_lock(meter varchar, day bigint) RETURNS void
    LANGUAGE sql AS $$
        SELECT pg_advisory_xact_lock(hashtextextended(meter || ':' || day::text, 0))
    $$
    """,
    f"""
    CREATE VIEW meter_readings AS
    SELECT r.meter_id,
           r.day + (r.first_slot + u.n - 1) * 900 AS interval_start,
           900 AS interval_s,
           u.import_wh, u.export_wh, u.voltage_v, u.current_a, u.power_factor,
           u.quality::varchar(16) AS quality, u.revision, u.source::varchar(16) AS source,
           u.received_at, u.verified, u.signature::varchar(132) AS signature,
           u.signer::varchar(42) AS signer, r.day
    FROM reading_runs r,
         unnest(r.import_wh, r.export_wh, r.voltage_v, r.current_a, r.power_factor, r.quality,
                r.revision, r.source, r.verified, r.signature, r.signer, r.received_at)
         WITH ORDINALITY AS u({FIELDS}, n)
    """,
    f"""
    CREATE FUNCTION meter_readings_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        d bigint := {DAY_OF.format(t="NEW.interval_start")};
        s int := (NEW.interval_start - d) / 900;
    BEGIN
        IF (NEW.interval_start - d) % 900 <> 0 OR coalesce(NEW.interval_s, 900) <> 900 THEN
            RAISE check_violation USING MESSAGE = format(
                'interval %s of %s is not a 15-minute interval', NEW.interval_start,
                NEW.meter_id);
        END IF;
        PERFORM reading_runs_lock(NEW.meter_id, d);
        IF EXISTS (SELECT 1 FROM reading_runs WHERE meter_id = NEW.meter_id AND day = d
                   AND first_slot <= s AND first_slot + slots > s) THEN
            RAISE unique_violation USING MESSAGE = format(
                'duplicate key value violates unique constraint "meter_readings_pkey": '
                'interval %s of meter %s is stored', NEW.interval_start, NEW.meter_id);
        END IF;
        UPDATE reading_runs r SET
            slots = r.slots + 1,
            import_wh = reading_runs_put(r.import_wh, r.slots + 1, r.slots + 1, NEW.import_wh),
            export_wh = reading_runs_put(r.export_wh, r.slots + 1, r.slots + 1, NEW.export_wh),
            voltage_v = reading_runs_put(r.voltage_v, r.slots + 1, r.slots + 1, NEW.voltage_v),
            current_a = reading_runs_put(r.current_a, r.slots + 1, r.slots + 1, NEW.current_a),
            power_factor = reading_runs_put(
                r.power_factor, r.slots + 1, r.slots + 1, NEW.power_factor),
            quality = reading_runs_put(r.quality, r.slots + 1, r.slots + 1, NEW.quality::text),
            revision = r.revision || coalesce(NEW.revision, 0),
            source = r.source || NEW.source::text,
            verified = r.verified || coalesce(NEW.verified, false),
            signature = reading_runs_put(
                r.signature, r.slots + 1, r.slots + 1, NEW.signature::text),
            signer = reading_runs_put(r.signer, r.slots + 1, r.slots + 1, NEW.signer::text),
            received_at = r.received_at || coalesce(NEW.received_at, now())
        WHERE r.meter_id = NEW.meter_id AND r.day = d AND r.first_slot + r.slots = s;
        IF NOT FOUND THEN
            INSERT INTO reading_runs (meter_id, day, first_slot, slots, {FIELDS})
            VALUES (NEW.meter_id, d, s, 1, ARRAY[NEW.import_wh], ARRAY[NEW.export_wh],
                    ARRAY[NEW.voltage_v], ARRAY[NEW.current_a], ARRAY[NEW.power_factor],
                    ARRAY[NEW.quality::text], ARRAY[coalesce(NEW.revision, 0)],
                    ARRAY[NEW.source::text], ARRAY[coalesce(NEW.verified, false)],
                    ARRAY[NEW.signature::text], ARRAY[NEW.signer::text],
                    ARRAY[coalesce(NEW.received_at, now())]);
        END IF;
        RETURN NEW;
    END $$
    """,
    f"""
    CREATE FUNCTION meter_readings_update() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        d bigint := {DAY_OF.format(t="OLD.interval_start")};
        s int := (OLD.interval_start - d) / 900;
    BEGIN
        IF NEW.meter_id IS DISTINCT FROM OLD.meter_id
           OR NEW.interval_start IS DISTINCT FROM OLD.interval_start
           OR NEW.interval_s IS DISTINCT FROM OLD.interval_s THEN
            RAISE feature_not_supported USING MESSAGE =
                'a stored reading keeps its meter and interval';
        END IF;
        PERFORM reading_runs_lock(OLD.meter_id, d);
        UPDATE reading_runs r SET
            import_wh = reading_runs_put(r.import_wh, r.slots, s - r.first_slot + 1,
                                         NEW.import_wh),
            export_wh = reading_runs_put(r.export_wh, r.slots, s - r.first_slot + 1,
                                         NEW.export_wh),
            voltage_v = reading_runs_put(r.voltage_v, r.slots, s - r.first_slot + 1,
                                         NEW.voltage_v),
            current_a = reading_runs_put(r.current_a, r.slots, s - r.first_slot + 1,
                                         NEW.current_a),
            power_factor = reading_runs_put(r.power_factor, r.slots, s - r.first_slot + 1,
                                            NEW.power_factor),
            quality = reading_runs_put(r.quality, r.slots, s - r.first_slot + 1,
                                       NEW.quality::text),
            revision = reading_runs_put(r.revision, r.slots, s - r.first_slot + 1,
                                        NEW.revision),
            source = reading_runs_put(r.source, r.slots, s - r.first_slot + 1,
                                      NEW.source::text),
            verified = reading_runs_put(r.verified, r.slots, s - r.first_slot + 1,
                                        NEW.verified),
            signature = reading_runs_put(r.signature, r.slots, s - r.first_slot + 1,
                                         NEW.signature::text),
            signer = reading_runs_put(r.signer, r.slots, s - r.first_slot + 1,
                                      NEW.signer::text),
            received_at = reading_runs_put(r.received_at, r.slots, s - r.first_slot + 1,
                                           NEW.received_at)
        WHERE r.meter_id = OLD.meter_id AND r.day = d
          AND r.first_slot <= s AND r.first_slot + r.slots > s;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
        RETURN NEW;
    END $$
    """,
    f"""
    CREATE FUNCTION meter_readings_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        d bigint := {DAY_OF.format(t="OLD.interval_start")};
        s int := (OLD.interval_start - d) / 900;
        r reading_runs%ROWTYPE;
        k int;
    BEGIN
        PERFORM reading_runs_lock(OLD.meter_id, d);
        DELETE FROM reading_runs x WHERE x.meter_id = OLD.meter_id AND x.day = d
            AND x.first_slot <= s AND x.first_slot + x.slots > s RETURNING * INTO r;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
        k := s - r.first_slot + 1;  -- the interval's place in the run: split around it
        IF k > 1 THEN
            INSERT INTO reading_runs (meter_id, day, first_slot, slots, {FIELDS})
            VALUES (r.meter_id, d, r.first_slot, k - 1, r.import_wh[1:k-1],
                    r.export_wh[1:k-1], r.voltage_v[1:k-1], r.current_a[1:k-1],
                    r.power_factor[1:k-1], r.quality[1:k-1], r.revision[1:k-1],
                    r.source[1:k-1], r.verified[1:k-1], r.signature[1:k-1],
                    r.signer[1:k-1], r.received_at[1:k-1]);
        END IF;
        IF k < r.slots THEN
            INSERT INTO reading_runs (meter_id, day, first_slot, slots, {FIELDS})
            VALUES (r.meter_id, d, s + 1, r.slots - k, r.import_wh[k+1:r.slots],
                    r.export_wh[k+1:r.slots], r.voltage_v[k+1:r.slots],
                    r.current_a[k+1:r.slots], r.power_factor[k+1:r.slots],
                    r.quality[k+1:r.slots], r.revision[k+1:r.slots], r.source[k+1:r.slots],
                    r.verified[k+1:r.slots], r.signature[k+1:r.slots], r.signer[k+1:r.slots],
                    r.received_at[k+1:r.slots]);
        END IF;
        RETURN OLD;
    END $$
    """,
    "CREATE TRIGGER meter_readings_insert INSTEAD OF INSERT ON meter_readings "
    "FOR EACH ROW EXECUTE FUNCTION meter_readings_insert()",
    "CREATE TRIGGER meter_readings_update INSTEAD OF UPDATE ON meter_readings "
    "FOR EACH ROW EXECUTE FUNCTION meter_readings_update()",
    "CREATE TRIGGER meter_readings_delete INSTEAD OF DELETE ON meter_readings "
    "FOR EACH ROW EXECUTE FUNCTION meter_readings_delete()",
]

# the stored readings as runs: islands of consecutive intervals per meter and day
MOVE = f"""
INSERT INTO reading_runs (meter_id, day, first_slot, slots, {FIELDS})
SELECT meter_id, day, min(slot), count(*),
       {", ".join(f"array_agg({f} ORDER BY slot)" for f in FIELDS.split(", "))}
FROM (
    SELECT m.*, (m.interval_start - m.day) / 900 AS slot,
           (m.interval_start - m.day) / 900
             - row_number() OVER (PARTITION BY m.meter_id, m.day ORDER BY m.interval_start)
             AS island
    FROM (SELECT r.*, {DAY_OF.format(t="r.interval_start")} AS day
          FROM meter_readings_rows r) m
) x
GROUP BY meter_id, day, island
"""

ROW_TABLE = """
CREATE TABLE meter_readings (
    meter_id varchar(66) NOT NULL,
    interval_start bigint NOT NULL,
    interval_s integer NOT NULL,
    import_wh bigint,
    export_wh bigint,
    voltage_v double precision,
    current_a double precision,
    power_factor double precision,
    quality varchar(16),
    revision integer NOT NULL,
    source varchar(16) NOT NULL,
    received_at timestamptz NOT NULL,
    verified boolean NOT NULL DEFAULT false,
    signature varchar(132),
    signer varchar(42),
    CONSTRAINT meter_readings_pkey PRIMARY KEY (meter_id, interval_start)
)
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE meter_readings RENAME TO meter_readings_rows")
    op.execute("ALTER INDEX meter_readings_pkey RENAME TO meter_readings_rows_pkey")
    for statement in UPGRADE:
        op.execute(statement)
    op.execute(MOVE)
    op.execute("DROP TABLE meter_readings_rows")
    # NULL arrays stand for all-NULL ones (what the ingest writes): fold what the move built
    for name in (
        "import_wh",
        "export_wh",
        "voltage_v",
        "current_a",
        "power_factor",
        "quality",
        "signature",
        "signer",
    ):
        op.execute(
            f"UPDATE reading_runs SET {name} = NULL WHERE {name} IS NOT NULL "
            f"AND array_position({name}, NULL) IS NOT NULL "
            f"AND cardinality(array_remove({name}, NULL)) = 0"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER VIEW meter_readings RENAME TO meter_readings_runs")
    op.execute(ROW_TABLE)
    op.execute(
        "INSERT INTO meter_readings SELECT meter_id, interval_start, interval_s, import_wh, "
        "export_wh, voltage_v, current_a, power_factor, quality, revision, source, "
        "received_at, verified, signature, signer FROM meter_readings_runs"
    )
    op.execute("DROP VIEW meter_readings_runs")
    for function in (
        "meter_readings_insert()",
        "meter_readings_update()",
        "meter_readings_delete()",
        "reading_runs_lock(varchar, bigint)",
        "reading_runs_put(anyarray, int, int, anyelement)",
    ):
        op.execute(f"DROP FUNCTION {function}")
    op.execute("DROP TABLE reading_runs")
    # btree_gist stays: other schemas of the database may use it

"""Join a finished day's adjacent interval runs into one (PostgreSQL).

A meter that reports every 15 minutes (live MQTT, single-reading REST) stores one
`reading_runs` row per reading: nothing extends the row a new interval follows. Such a day
is 96 rows of 16 one-element arrays, and every reader unnests them one by one. Once a day is
over, its adjacent runs (an island of runs with no gap between them) are replaced by one run
holding the same elements in the same order: readings, revisions, signatures and receipt
times unchanged, so nothing a reader sees changes except the number of rows.

Safe beside the writers: it holds the (meter, day) advisory locks every writer of the runs
takes (the COPY, the merge, the view's triggers), so a COPY of an interval inside an island
waits for the commit and then finds it stored, as it would have before.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from backend.meters.runs import ARRAYS, DAY, lock

# (meter, day) pairs of the days [since, before) holding two runs that touch
CANDIDATES = """
SELECT a.meter_id, a.day FROM reading_runs a
WHERE a.day >= %(since)s AND a.day < %(before)s AND EXISTS (
    SELECT 1 FROM reading_runs b
    WHERE b.meter_id = a.meter_id AND b.day = a.day AND b.first_slot = a.first_slot + a.slots)
GROUP BY a.meter_id, a.day ORDER BY a.day, a.meter_id LIMIT %(limit)s
"""
FIELDS = tuple(name for name, _ in ARRAYS)  # the runs' array columns, in the table's order
ALWAYS = ("revision", "source", "verified", "received_at")  # NOT NULL arrays


def _aggregate(field: str) -> str:
    ordered = f"array_agg(u.{field} ORDER BY g.first_slot, u.n)"
    if field in ALWAYS:
        return ordered
    return f"CASE WHEN bool_or(u.{field} IS NOT NULL) THEN {ordered} END"  # NULL: all NULL


# the islands of more than one run among the locked pairs, deleted and kept joined in `joined`
JOIN_ISLANDS = f"""
WITH r AS (
    SELECT meter_id, day, first_slot,
           CASE WHEN first_slot = lag(first_slot + slots) OVER w THEN 0 ELSE 1 END AS brk
    FROM reading_runs WHERE (meter_id, day) IN (
        SELECT * FROM unnest(%(meters)s::text[], %(days)s::int8[]))
    WINDOW w AS (PARTITION BY meter_id, day ORDER BY first_slot)
), islands AS (
    SELECT meter_id, day, first_slot,
           sum(brk) OVER (PARTITION BY meter_id, day ORDER BY first_slot) AS island
    FROM r
), joinable AS (
    SELECT * FROM islands WHERE (meter_id, day, island) IN (
        SELECT meter_id, day, island FROM islands GROUP BY 1, 2, 3 HAVING count(*) > 1)
), gone AS (
    DELETE FROM reading_runs t USING joinable j
    WHERE t.meter_id = j.meter_id AND t.day = j.day AND t.first_slot = j.first_slot
    RETURNING t.*, j.island
)
INSERT INTO joined
SELECT g.meter_id, g.day, min(g.first_slot), count(*),
       {", ".join(_aggregate(f) for f in FIELDS)}
FROM gone g, unnest({", ".join(f"g.{f}" for f in FIELDS)}) WITH ORDINALITY
    AS u({", ".join(FIELDS)}, n)
GROUP BY g.meter_id, g.day, g.island
"""


COUNT = (
    "SELECT count(*) FROM reading_runs WHERE (meter_id, day) IN ("
    "SELECT * FROM unnest(%(meters)s::text[], %(days)s::int8[]))"
)


@dataclass(frozen=True)
class Compaction:
    meter_days: int  # (meter, day) pairs looked at
    runs_before: int  # their runs that were joined
    runs_after: int  # the runs that replaced them


def compact(driver: psycopg.Connection, now: int, *, days: int = 3, limit: int = 500) -> Compaction:
    """Join the adjacent runs of up to `limit` (meter, day) pairs of the `days` UTC days
    before `now`'s day (today's runs are still growing). One transaction; commits."""
    today = now - now % DAY
    with driver.transaction():
        pairs = driver.execute(
            CANDIDATES, {"since": today - days * DAY, "before": today, "limit": limit}
        ).fetchall()
        if not pairs:
            return Compaction(0, 0, 0)
        meters, day_list = [m for m, _ in pairs], [d for _, d in pairs]
        lock(driver, meters, day_list)
        keys = {"meters": meters, "days": day_list}
        driver.execute(
            "CREATE TEMP TABLE IF NOT EXISTS joined (LIKE reading_runs) ON COMMIT DELETE ROWS"
        )
        # inside a caller's transaction this block is a savepoint: no commit has emptied it
        driver.execute("DELETE FROM joined")
        runs_before = driver.execute(COUNT, keys).fetchone()
        driver.execute(JOIN_ISLANDS, keys)
        joined = driver.execute("INSERT INTO reading_runs SELECT * FROM joined").rowcount
        runs_after = driver.execute(COUNT, keys).fetchone()
    assert runs_before is not None and runs_after is not None
    return Compaction(len(pairs), runs_before[0] - runs_after[0] + joined, joined)

"""Readings stored as interval runs (PostgreSQL): the runs' COPY stores exactly the readings
it was given, the `meter_readings` view shows them as rows and takes ORM writes, and batches
stored at the same time for the same meter and day never store an interval twice."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import orjson
import psycopg
import pytest
from sqlalchemy import func, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from backend.meters.batch import Columns, Rules, decode_plain, validate_plain
from backend.meters.models import MeterReading
from backend.meters.runs import (
    LOCK_PAIRS_MAX,
    ROW_COLUMNS,
    Runs,
    copy_runs,
    day_bounds,
    encode,
    lock,
)
from backend.meters.validation import MeterLimits, iso
from tests.fixtures.meters import NOW, ingest_json, ingest_while_held

pytestmark = pytest.mark.postgres
DAY = 86_400
ROW = ", ".join(ROW_COLUMNS)


def columns(meters: list[str], starts: list[int], *, mixed: bool) -> Columns:
    rows = Columns()
    for i, (meter, start) in enumerate(zip(meters, starts, strict=True)):
        rows.append(
            {
                "idx": i,
                "meter_id": meter,
                "interval_start": start,
                "import_wh": None if mixed and i % 3 == 0 else i * 7,
                "export_wh": 2**40 + i,
                "voltage_v": 229.75 if mixed and i % 2 else None,
                "current_a": None,
                "power_factor": -0.25,
                "quality": (["high", "estimated", None][i % 3]) if mixed else "high",
            },
            None,
        )
        if mixed and i % 4 == 1:
            rows.verified[-1] = True
            rows.signature[-1] = "0x" + "ab" * 65
            rows.signer[-1] = "0x" + "Cd" * 20
    return rows


@pytest.mark.parametrize(
    ("mixed", "quality"),
    [(False, None), (True, None), (False, ["high", "done"]), (False, ["high", "medium"])],
    ids=["plain", "mixed NULLs and signatures", "text of one length", "text of two lengths"],
)
def test_the_runs_hold_exactly_the_readings_copied(metered, mixed, quality):
    session, _, _, solar, house = metered
    ids = [solar.meter_id, house.meter_id]
    one = [NOW - 900 * k for k in range(1, 301)] + [NOW - 900 * k for k in range(320, 400)]
    meters = [ids[k % 2] for k in range(2 * len(one))]  # both meters, interleaved, backwards
    starts = [s for s in one for _ in ids]
    rows = columns(meters, starts, mixed=mixed)
    if quality:
        rows.quality = [quality[k % 3 % 2] for k in range(len(starts))]
    received = datetime(2026, 1, 1, 0, 0, 0, 123_456, tzinfo=UTC)
    connection = session.connection()
    assert copy_runs(connection, rows, "rest", received)
    runs = connection.execute(text("SELECT count(*) FROM reading_runs")).scalar_one()
    stored = connection.execute(text(f"SELECT {ROW} FROM meter_readings")).all()
    expected = {
        (m, s, 900, imp, exp, v, c, pf, q, 0, "rest", ver, sig, signer, received)
        for m, s, imp, exp, v, c, pf, q, ver, sig, signer in zip(
            rows.meter_id,
            rows.interval_start,
            rows.import_wh,
            rows.export_wh,
            rows.voltage_v,
            rows.current_a,
            rows.power_factor,
            rows.quality,
            rows.verified,
            rows.signature,
            rows.signer,
            strict=True,
        )
    }
    assert len(stored) == len(starts) and set(map(tuple, stored)) == expected
    assert runs == len(Runs(rows)) == 2 * 6  # per meter: 5 days, one split by the gap


def test_consecutive_intervals_of_a_meter_and_day_are_one_run(metered):
    _, _, _, solar, _ = metered
    day = NOW - DAY
    starts = [day + 900 * k for k in range(96)] + [NOW + 900 * k for k in range(4)]
    rows = columns([solar.meter_id] * len(starts), starts, mixed=False)
    runs = Runs(rows)
    assert (runs.day, runs.first_slot) == ([day, NOW], [0, 0])
    assert [int(e - b) for b, e in zip(runs.begin, runs.end, strict=True)] == [96, 4]
    body = b"".join(encode(runs, rows, "rest", datetime.now(UTC)))
    assert body.startswith(b"PGCOPY\n\xff\r\n\x00") and body.endswith(b"\xff\xff")


def test_a_batch_with_a_stored_or_repeated_interval_is_left_to_the_merge(metered):
    session, _, _, solar, _ = metered
    connection = session.connection()
    rows = columns([solar.meter_id] * 3, [NOW - 900, NOW - 1800, NOW - 900], mixed=False)
    assert not copy_runs(connection, rows, "rest", datetime.now(UTC))
    first = columns([solar.meter_id] * 2, [NOW - 900, NOW - 1800], mixed=False)
    assert copy_runs(connection, first, "rest", datetime.now(UTC))
    overlapping = columns([solar.meter_id] * 2, [NOW - 2700, NOW - 1800], mixed=False)
    assert not copy_runs(connection, overlapping, "rest", datetime.now(UTC))
    assert connection.execute(text("SELECT count(*) FROM meter_readings")).scalar_one() == 2


def test_the_view_takes_orm_inserts_updates_and_deletes(metered):
    session, _, _, solar, _ = metered
    meter = solar.meter_id
    for k in (0, 1, 2, 4):  # 0-2 one run, 4 a run of its own
        session.add(
            MeterReading(meter_id=meter, interval_start=NOW + 900 * k, export_wh=k, source="rest")
        )
        session.flush()
    runs = "SELECT first_slot, slots FROM reading_runs WHERE meter_id = :m ORDER BY first_slot"
    connection = session.connection()
    assert connection.execute(text(runs), {"m": meter}).all() == [(0, 3), (4, 1)]
    reading = session.get(MeterReading, (meter, NOW + 900))
    assert reading is not None and reading.export_wh == 1 and reading.import_wh is None
    reading.import_wh, reading.revision = 55, 1
    session.flush()
    session.expire_all()
    again = session.get(MeterReading, (meter, NOW + 900))
    assert again is not None and (again.import_wh, again.export_wh, again.revision) == (55, 1, 1)
    others = connection.execute(
        text("SELECT import_wh FROM meter_readings WHERE meter_id = :m ORDER BY interval_start"),
        {"m": meter},
    ).scalars()
    assert list(others) == [None, 55, None, None]
    session.delete(again)
    session.flush()
    assert connection.execute(text(runs), {"m": meter}).all() == [(0, 1), (2, 1), (4, 1)]
    kept = connection.execute(
        text("SELECT interval_start, export_wh FROM meter_readings WHERE meter_id = :m"),
        {"m": meter},
    ).all()
    assert sorted(kept) == [(NOW, 0), (NOW + 1800, 2), (NOW + 3600, 4)]
    with pytest.raises(IntegrityError, match="meter_readings_pkey"), session.begin_nested():
        session.add(MeterReading(meter_id=meter, interval_start=NOW, export_wh=9, source="rest"))
        session.flush()


def test_a_correction_through_the_view_changes_one_interval_and_is_audited(metered, meter_settings):
    session, *_ = metered
    solar = metered[3]
    body = [
        {"meterId": solar.meter_id, "timestamp": iso(NOW - 900 * k), "exportWh": 100 + k}
        for k in range(1, 11)
    ]
    first = ingest_json(session, orjson.dumps(body), meter_settings)
    assert first.accepted == 10
    body[3]["exportWh"] = 999
    body.append({"meterId": solar.meter_id, "timestamp": iso(NOW - 900 * 11), "exportWh": 7})
    second = ingest_json(session, orjson.dumps(body), meter_settings)
    assert (second.accepted, second.duplicate, second.corrected) == (1, 9, 1)
    connection = session.connection()
    values = connection.execute(
        text(
            "SELECT interval_start, export_wh, revision FROM meter_readings WHERE meter_id = :m "
            "ORDER BY interval_start"
        ),
        {"m": solar.meter_id},
    ).all()
    newest_first = [7, *range(110, 104, -1), 999, 103, 102, 101]
    assert [v[1] for v in values] == newest_first
    assert [v[2] for v in values].count(1) == 1
    audit = connection.execute(
        text(
            "SELECT interval_start, previous_export_wh, export_wh, revision "
            "FROM reading_corrections"
        )
    ).all()
    assert audit == [(NOW - 900 * 4, 104, 999, 1)]


def test_concurrent_batches_for_the_same_meter_day_never_duplicate_an_interval(fresh_meter):
    """Eight batches of one meter's same two days, each a different mix of the same 192
    intervals, at once: every interval stored once, no runs overlap, nothing counted twice."""
    engine, meter, settings = fresh_meter
    day = NOW - 2 * DAY
    intervals = [day + 900 * k for k in range(192)]
    results: list = []
    errors: list[BaseException] = []

    def send(offset: int) -> None:
        chosen = [s for k, s in enumerate(intervals) if (k + offset) % 3 != 0]
        body = orjson.dumps(
            [
                {"meterId": meter, "timestamp": iso(s), "exportWh": (s // 900) % 1_000}
                for s in chosen
            ]
        )
        try:
            with Session(engine) as session:
                results.append(ingest_json(session, body, settings))
        except BaseException as exc:  # shown by the assertion below
            errors.append(exc)

    run_together(send, range(8))
    assert errors == [] and len(results) == 8
    count, distinct, total = intervals_of(engine, meter)
    overlaps = overlapping_runs(engine)
    assert count == distinct == 192 and overlaps == 0
    assert total == sum((s // 900) % 1_000 for s in intervals)
    assert sum(r.accepted for r in results) == 192
    assert sum(r.accepted + r.duplicate for r in results) == 8 * 128
    assert all(r.corrected == 0 and r.rejected == 0 for r in results)
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(MeterReading)).one() == 192


def test_day_bounds_read_the_runs_of_the_days_asked_for_only(metered):
    session, _, _, solar, _ = metered
    starts = [NOW - DAY + 900 * k for k in range(3 * 96)]  # three days
    rows = columns([solar.meter_id] * len(starts), starts, mixed=False)
    assert copy_runs(session.connection(), rows, "rest", datetime.now(UTC))
    start, end = NOW + 3_600, NOW + 7_200
    query = select(MeterReading.interval_start).where(
        MeterReading.meter_id == solar.meter_id,
        MeterReading.interval_start >= start,
        MeterReading.interval_start < end,
    )
    bounded = query.where(*day_bounds(session, start, end))
    expected = [start + 900 * k for k in range(4)]
    assert sorted(session.exec(query).all()) == sorted(session.exec(bounded).all()) == expected
    sql = bounded.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
    plan = "\n".join(session.connection().exec_driver_sql(f"EXPLAIN {sql}").scalars())
    assert f"day >= '{NOW}'" in plan or f"day >= {NOW}" in plan, plan  # below the unnest


def test_a_merge_that_finds_its_intervals_taken_by_a_copy_merges_again(fresh_meter):
    """The merge locks its meter-days, a COPY of new intervals does not: a merge (here: a
    batch repeating an interval) inserting intervals that a COPY not yet committed holds waits
    for it, and when it commits merges again: those intervals are duplicates, none twice."""
    engine, meter, settings = fresh_meter

    def body(slots: range, repeat: int | None = None) -> bytes:
        readings = [
            {"meterId": meter, "timestamp": iso(NOW - 900 * k), "exportWh": k} for k in slots
        ]
        if repeat is not None:
            readings.append(
                {"meterId": meter, "timestamp": iso(NOW - 900 * repeat), "exportWh": repeat}
            )
        return orjson.dumps(readings)

    copied, result = ingest_while_held(
        engine,
        settings,
        body(range(1, 101)),
        body(range(51, 151), repeat=150),
        name="gl-test-merge-again",
    )  # the COPY of 1..100 held uncommitted, the merge of 51..150 waits for it
    assert copied.accepted == 100
    assert (result.accepted, result.duplicate, result.corrected) == (50, 51, 0)
    count, distinct, total = intervals_of(engine, meter)
    assert count == distinct == 150 and total == sum(range(1, 151))


def run_together(work, args) -> None:
    """`work(arg)` for every arg, each on a thread of its own, all at once (at most 120 s)."""
    threads = [threading.Thread(target=work, args=(arg,)) for arg in args]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)


def overlapping_runs(engine) -> int:
    """Pairs of stored runs of one meter and day that overlap (none may)."""
    with engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT count(*) FROM reading_runs a JOIN reading_runs b ON a.meter_id = "
                "b.meter_id AND a.day = b.day AND a.first_slot < b.first_slot "
                "AND a.first_slot + a.slots > b.first_slot"
            )
        ).scalar_one()


def intervals_of(engine, meter: str) -> tuple[int, int, int]:
    """(intervals stored, distinct interval starts, their export Wh) of `meter`."""
    with engine.connect() as connection:
        count, distinct, total = connection.execute(
            text(
                "SELECT count(*), count(DISTINCT interval_start), sum(export_wh) "
                "FROM meter_readings WHERE meter_id = :m"
            ),
            {"m": meter},
        ).one()
    return count, distinct, total


def batch(meter: str, slots: range) -> bytes:
    return orjson.dumps(
        [
            {"meterId": meter, "timestamp": iso(NOW - 900 * k), "exportWh": k % 2_000 + 1}
            for k in slots
        ]
    )


def stored(engine) -> tuple[int, int]:
    with Session(engine) as session:
        count, total = session.exec(select(func.count(), func.sum(MeterReading.export_wh))).one()
    return count, total or 0


def expected(slots: set[int]) -> tuple[int, int]:
    return len(slots), sum(k % 2_000 + 1 for k in slots)


def test_a_batch_arriving_while_another_is_stored_loses_nothing(fresh_meter):
    engine, meter, settings = fresh_meter
    first, second = range(1, 2_001), range(1_001, 3_001)  # 1,000 intervals in both
    # the second waits for the first's commit: its (meter, day) locks on the runs
    result_a, result_b = ingest_while_held(
        engine,
        settings,
        batch(meter, first),
        batch(meter, second),
        name=f"gl-test-second-{uuid.uuid4().hex[:8]}",
        wait_events=("transactionid", "advisory"),
    )
    assert result_a.accepted == 2_000
    assert (result_b.accepted, result_b.duplicate, result_b.corrected) == (1_000, 1_000, 0)
    assert stored(engine) == expected(set(first) | set(second))


def test_concurrent_overlapping_batches_store_each_interval_once(fresh_meter):
    engine, meter, settings = fresh_meter
    ranges = [range(k * 500 + 1, k * 500 + 2_001) for k in range(4)]  # each overlaps the next
    results = []

    def send(slots: range) -> None:
        with Session(engine) as session:
            results.append(ingest_json(session, batch(meter, slots), settings))

    run_together(send, ranges)
    union = set().union(*ranges)
    assert len(results) == 4
    assert sum(r.accepted for r in results) == len(union)
    assert sum(r.accepted + r.duplicate for r in results) == 4 * 2_000
    assert stored(engine) == expected(union)


def test_runs_encoded_from_the_column_checks_arrays_equal_those_encoded_from_the_lists():
    """The arrays `validate_plain` leaves on its columns spare the lists' conversion only: the
    COPY body is byte for byte the one built from the lists, and arrays that no longer
    describe the lists (rows dropped, a list replaced) are not used."""
    owner = uuid.uuid4()
    ids = ["0x" + f"{k:064x}" for k in (7, 3)]
    meters = {m: MeterLimits(m, "bidirectional", 10_000, owner, "approved") for m in ids}
    body = [
        {"meterId": ids[k % 2], "timestamp": iso(NOW - 900 * (k // 2 + 1)), "importWh": k}
        | ({"exportWh": 2 * k} if k % 5 else {})
        for k in range(300)
    ]
    body.append({"meterId": ids[0], "timestamp": iso(NOW - 3 * DAY), "importWh": 1})
    plain = decode_plain(orjson.dumps(body))
    assert plain is not None
    rows, rejected = validate_plain(plain, meters, Rules(NOW, 60, 1_000_000, owner))
    assert not rejected and rows.key_arrays() is not None
    received = datetime.now(UTC)

    def body_of(columns: Columns) -> bytes:
        return b"".join(encode(Runs(columns), columns, "rest", received))

    lists_only = replace(rows, arrays=None)
    assert Runs(rows).in_order and not Runs(rows).repeats and len(Runs(rows)) == 5
    assert body_of(rows) == body_of(lists_only)
    rows.export_wh = [None if v is None else v + 1 for v in rows.export_wh]
    assert rows.key_arrays() is None
    assert body_of(rows) != body_of(lists_only)
    rows.drop({0})
    assert rows.key_arrays() is None and len(rows) == 300


def at(slot: int) -> str:
    """The timestamp of the `slot`-th interval of the three days before NOW."""
    return iso(NOW - 900 * (300 - slot))


def test_two_writers_of_fragments_of_one_meter_day_never_count_a_reading_twice(fresh_meter):
    """What two MQTT subscribers do: each COPYs fragments (runs of 1-3 intervals) of the same
    meter-day, and here they overlap on three intervals. The second waits for the first's
    (meter, day) lock (no exclusion constraint), then finds those intervals stored and merges:
    duplicates, each interval stored once, energy conserved."""
    engine, meter, settings = fresh_meter
    first_slots = [1, 3, 4, 7, 8, 9, 12]
    second_slots = [2, 4, 5, 6, 9, 10, 11, 12]  # 4, 9 and 12 in both

    def fragments(slots: list[int]) -> bytes:
        return orjson.dumps([{"meterId": meter, "timestamp": at(k), "exportWh": k} for k in slots])

    first, second = ingest_while_held(
        engine,
        settings,
        fragments(first_slots),
        fragments(second_slots),
        name=f"gl-test-mqtt10-fragments-{uuid.uuid4().hex[:8]}",
        wait_events=("advisory",),
    )
    assert (first.accepted, first.duplicate) == (7, 0)
    assert (second.accepted, second.duplicate, second.corrected) == (5, 3, 0)
    union = set(first_slots) | set(second_slots)
    count, distinct, total = intervals_of(engine, meter)
    assert count == distinct == len(union) and total == sum(union)


def test_concurrent_fragmented_writers_store_every_interval_once(fresh_meter):
    """Two writers storing interleaved fragments of the same meter-days at once, round after
    round (each also repeating some of the other's intervals): no runs overlap, every interval
    once, accepted + duplicates = what was sent."""
    engine, meter, settings = fresh_meter
    results: list = []
    errors: list[BaseException] = []
    together = threading.Barrier(2, timeout=60)  # both writers store each round at once

    def write(parity: int) -> None:
        try:
            for round_ in range(6):
                together.wait()
                base = round_ * 48
                chosen = [k for k in range(base, base + 48) if k % 2 == parity or k % 5 == 0]
                body = orjson.dumps(
                    [{"meterId": meter, "timestamp": at(k), "exportWh": k + 1} for k in chosen]
                )
                with Session(engine) as session:
                    results.append((len(chosen), ingest_json(session, body, settings)))
        except BaseException as exc:  # shown by the assertion below
            errors.append(exc)

    run_together(write, (0, 1))
    assert errors == [] and len(results) == 12
    count, distinct, total = intervals_of(engine, meter)
    overlaps = overlapping_runs(engine)
    assert overlaps == 0 and count == distinct == 288 and total == sum(range(1, 289))
    assert sum(r.accepted for _, r in results) == 288
    assert all(r.accepted + r.duplicate == sent and r.corrected == 0 for sent, r in results)


def test_a_batch_of_more_meter_days_than_the_lock_table_holds_locks_them_all_at_once(
    fresh_pg_url,
):
    """100,000 (meter, day) pairs — a head-end's interval for every meter — would run
    PostgreSQL's shared lock table out of memory one lock per pair; such a batch takes the
    runs key exclusive instead, so it waits for every writer and every writer waits for it
    (a small batch's pairs, the view triggers' reading_runs_lock)."""
    many = [f"m{i}" for i in range(100_000)], [0] * 100_000
    url = str(fresh_pg_url).replace("postgresql+psycopg://", "postgresql://")
    big, small = psycopg.connect(url), psycopg.connect(url)  # the URL names the test's schema
    try:
        for connection in (big, small):
            connection.execute("SET lock_timeout = 300")
            connection.commit()
        lock(big, *many)  # no "out of shared memory"
        with pytest.raises(psycopg.errors.LockNotAvailable):
            lock(small, ["m7"], [86_400])  # a pair the big batch does not name
        small.rollback()
        with pytest.raises(psycopg.errors.LockNotAvailable):
            small.execute("SELECT reading_runs_lock('m7', 86400)")
        small.rollback()
        big.commit()
        lock(small, ["m7"], [86_400])  # a small writer holds its pair now
        with pytest.raises(psycopg.errors.LockNotAvailable):
            lock(big, *many)
        big.rollback()
        small.commit()
        # up to LOCK_PAIRS_MAX pairs: one lock per pair, other pairs go on
        lock(big, [f"m{i}" for i in range(LOCK_PAIRS_MAX)], [0] * LOCK_PAIRS_MAX)
        lock(small, ["elsewhere"], [0])
        with pytest.raises(psycopg.errors.LockNotAvailable):
            lock(small, ["m7"], [0])
    finally:
        big.close()
        small.close()

"""Joining a finished day's adjacent reading runs: every reading reads back exactly as before
(values, NULLs, revisions, signatures, receipt times), only the row count falls; today's runs,
lone runs and runs across a gap stay; the writers' guarantees hold afterwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from backend.meters.compaction import compact
from backend.meters.runs import copy_runs
from tests.backend.meters.test_runs import ROW, columns
from tests.fixtures.meters import NOW

pytestmark = pytest.mark.postgres
DAY = 86_400


def store_one_by_one(connection, meter: str, starts: list[int]) -> None:
    """As a live meter does: one reading per batch, each its own run."""
    for k, start in enumerate(starts):
        rows = columns([meter], [start], mixed=True)
        rows.import_wh = [None if k % 5 == 0 else k]  # some NULL, most not
        if k % 7 == 3:
            rows.verified[0], rows.signature[0] = True, "0x" + f"{k:02x}" * 65
            rows.signer[0] = "0x" + "cd" * 20
        received = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=k, microseconds=k)
        assert copy_runs(connection, rows, "mqtt", received)


def runs_of(connection, meter: str, day: int) -> list[tuple[int, int]]:
    return [
        tuple(r)
        for r in connection.execute(
            text(
                "SELECT first_slot, slots FROM reading_runs WHERE meter_id = :m AND day = :d "
                "ORDER BY first_slot"
            ),
            {"m": meter, "d": day},
        )
    ]


def test_adjacent_runs_of_finished_days_become_one_and_read_back_unchanged(metered):
    session, _, _, solar, house = metered
    connection = session.connection()
    yesterday, earlier = NOW - DAY, NOW - 2 * DAY
    store_one_by_one(
        connection,
        solar.meter_id,
        [yesterday + 900 * s for s in [*range(48), *range(50, 96)]]  # a gap at slots 48-49
        + [NOW + 900 * s for s in range(4)],  # today: still growing
    )
    store_one_by_one(connection, house.meter_id, [earlier + 900 * s for s in (10, 11, 40)])
    store_one_by_one(connection, house.meter_id, [NOW - 10 * DAY + 900])  # beyond the window
    before = set(map(tuple, connection.execute(text(f"SELECT {ROW} FROM meter_readings"))))
    assert len(before) == 94 + 4 + 3 + 1

    driver = connection.connection.driver_connection
    done = compact(driver, NOW + 3_600, days=3)

    assert (done.meter_days, done.runs_before, done.runs_after) == (2, 94 + 2, 3)
    after = set(map(tuple, connection.execute(text(f"SELECT {ROW} FROM meter_readings"))))
    assert after == before
    assert runs_of(connection, solar.meter_id, yesterday) == [(0, 48), (50, 46)]
    assert runs_of(connection, solar.meter_id, NOW) == [(s, 1) for s in range(4)]
    assert runs_of(connection, house.meter_id, earlier) == [(10, 2), (40, 1)]
    assert runs_of(connection, house.meter_id, NOW - 10 * DAY) == [(1, 1)]
    # an all-NULL field of a joined run stays a NULL array, as the COPY writes it
    nulls = connection.execute(
        text(
            "SELECT current_a IS NULL, voltage_v IS NULL FROM reading_runs "
            "WHERE meter_id = :m AND day = :d AND first_slot = 0"
        ),
        {"m": solar.meter_id, "d": yesterday},
    ).one()
    assert tuple(nulls) == (True, True)
    assert compact(driver, NOW + 3_600, days=3).meter_days == 0  # nothing left to join


def test_after_joining_a_stored_interval_is_still_refused_and_a_new_one_still_stored(metered):
    session, _, _, solar, _ = metered
    connection = session.connection()
    yesterday = NOW - DAY
    store_one_by_one(connection, solar.meter_id, [yesterday + 900 * s for s in range(10)])
    driver = connection.connection.driver_connection
    assert compact(driver, NOW, days=1).runs_after == 1
    again = columns([solar.meter_id], [yesterday + 900 * 4], mixed=False)
    assert not copy_runs(connection, again, "rest", datetime.now(UTC))  # the merge's case
    new = columns([solar.meter_id], [yesterday + 900 * 10], mixed=False)
    assert copy_runs(connection, new, "rest", datetime.now(UTC))
    assert runs_of(connection, solar.meter_id, yesterday) == [(0, 10), (10, 1)]


def test_compactions_inside_one_open_transaction_join_each_island_once(metered):
    """Called twice before any commit (the block is then a savepoint and the staging table
    keeps the first call's runs unless emptied): the second call stores only its own."""
    session, _, _, solar, house = metered
    connection = session.connection()
    store_one_by_one(connection, solar.meter_id, [NOW - DAY + 900 * s for s in range(6)])
    driver = connection.connection.driver_connection
    assert compact(driver, NOW, days=1).runs_after == 1
    store_one_by_one(connection, house.meter_id, [NOW - DAY + 900 * s for s in range(4)])
    assert compact(driver, NOW, days=1).runs_after == 1
    assert runs_of(connection, solar.meter_id, NOW - DAY) == [(0, 6)]
    assert runs_of(connection, house.meter_id, NOW - DAY) == [(0, 4)]

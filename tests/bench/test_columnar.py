"""The prototype columnar layout of the meter_ingest bench stores each reading once, with its
values, in one row per meter, day and run of consecutive intervals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from bench import _columnar

pytestmark = pytest.mark.postgres
DAY = 1_764_460_800  # 2025-11-30 00:00 UTC


def test_a_batch_becomes_one_row_per_meter_day_and_run(db_session):
    meters = ["0x" + "a1" * 32, "0x" + "b2" * 32]
    readings = [  # meter a: 23:30, 23:45 and 00:00 next day; meter b: 01:00, 02:00 (a gap)
        (meters[0], DAY + 95 * 900, 3, 4, "high"),
        (meters[1], DAY + 4 * 900, 5, 6, None),
        (meters[0], DAY + 94 * 900, 1, 2, "estimated"),
        (meters[0], DAY + 86_400, 7, 8, "low"),
        (meters[1], DAY + 8 * 900, 9, 10, "medium"),
    ]
    body = _columnar.encode(
        [r[0] for r in readings],
        [r[1] for r in readings],
        [r[2] for r in readings],
        [r[3] for r in readings],
        [r[4] for r in readings],
        "bench",
        datetime(2025, 12, 1, tzinfo=UTC),
    )
    connection = db_session.connection()
    connection.execute(text(_columnar.TABLE))
    driver = connection.connection.driver_connection
    with driver.cursor().copy(_columnar.COPY) as copy:
        copy.write(body)
    rows = connection.execute(
        text(
            "SELECT meter_id, day, first_slot, import_wh, export_wh, quality, verified "
            "FROM columnar_readings ORDER BY meter_id, day, first_slot"
        )
    ).all()
    assert [tuple(r) for r in rows] == [
        (meters[0], DAY, 94, [1, 3], [2, 4], [4, 1], [False, False]),
        (meters[0], DAY + 86_400, 0, [7], [8], [3], [False]),
        (meters[1], DAY, 4, [5], [6], [0], [False]),
        (meters[1], DAY, 8, [9], [10], [2], [False]),
    ]

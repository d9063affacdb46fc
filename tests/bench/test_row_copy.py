"""The row-per-reading COPY encoder of the bench's `row_layout_limit_readings_per_s`
(bench/_row_copy.py): its body, built by columns, stores what psycopg's own row writer stores;
a batch it cannot lay out in a few fixed blocks is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backend.meters.batch import Columns
from backend.meters.runs import ROW_COLUMNS
from bench._row_copy import TYPES, copy_rows, encode, records

TABLE = "(" + ", ".join(map(" ".join, zip(ROW_COLUMNS, TYPES, strict=True))) + ")"


def columns(n: int, *, mixed: bool) -> Columns:
    rows = Columns()
    for i in range(n):
        rows.append(
            {
                "idx": i,
                "meter_id": "0x" + f"{i % 13:064x}",
                "interval_start": 1_700_000_000 - 900 * i,
                "import_wh": None if mixed and i % 2 else i * 7,
                "export_wh": 2**40 + i,
                "voltage_v": 229.75 if mixed and i % 2 else None,
                "current_a": None,
                "power_factor": -0.25,
                "quality": ("high" if i % 2 else None) if mixed else "estimated",
            },
            None,
        )
        if mixed and i % 4 == 1:
            rows.verified[-1] = True
            rows.signature[-1] = "0x" + "ab" * 65
            rows.signer[-1] = "0x" + "Cd" * 20
    return rows


@pytest.mark.parametrize("mixed", [False, True], ids=["one layout", "three layouts"])
def test_the_column_encoding_stores_what_psycopg_s_row_writer_stores(db_session, mixed):
    rows = columns(500, mixed=mixed)
    received = datetime(2026, 1, 1, 0, 0, 0, 123_456, tzinfo=UTC)
    parts = encode(rows, "rest", received)
    assert parts is not None
    driver = db_session.connection().connection.driver_connection
    for table in ("ours", "theirs"):
        driver.execute(f"CREATE TEMP TABLE {table} {TABLE} ON COMMIT DROP")
    with driver.cursor().copy(copy_rows("ours")) as copy:
        for part in parts:
            copy.write(part)
    with driver.cursor().copy(copy_rows("theirs")) as copy:
        copy.set_types(TYPES)
        for record in records(rows, "rest", received):
            copy.write_row(record)
    count = "SELECT count(*) FROM (SELECT * FROM {} EXCEPT ALL SELECT * FROM {}) d"
    assert driver.execute("SELECT count(*) FROM ours").fetchone() == (500,)
    assert driver.execute(count.format("ours", "theirs")).fetchone() == (0,)
    assert driver.execute(count.format("theirs", "ours")).fetchone() == (0,)
    first = driver.execute(
        "SELECT export_wh, received_at FROM ours WHERE interval_start = 1700000000"
    ).fetchone()
    assert first == (2**40, received)


def test_a_batch_of_too_many_layouts_is_left_to_the_row_writer():
    rows = columns(64, mixed=True)
    rows.quality = [["low", "medium", "estimated", None][i % 4] for i in range(64)]
    assert encode(rows, "rest", datetime.now(UTC)) is None
    rows = columns(64, mixed=False)
    assert encode(rows, "rest", datetime.now(UTC)) is not None
    rows.meter_id[5] += "0"  # would be cut to 66 bytes in a fixed-width block
    assert encode(rows, "rest", datetime.now(UTC)) is None

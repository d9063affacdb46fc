"""The binary COPY of new intervals: its body equals psycopg's own encoding, and batches
stored at the same time lose nothing (the one that finds its intervals taken is merged)."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import func, text
from sqlmodel import Session, select

from backend.core.config import Settings
from backend.core.db import make_engine
from backend.meters.batch import Columns
from backend.meters.copy_in import COPY_READINGS, TYPES, _records, encode
from backend.meters.models import MeterReading
from backend.meters.services import ingest_body
from backend.meters.validation import iso
from tests.fixtures.meters import NOW, seed_meters

pytestmark = pytest.mark.postgres
TABLE = (
    "(meter_id varchar(66), interval_start bigint, interval_s int, import_wh bigint, "
    "export_wh bigint, voltage_v float8, current_a float8, power_factor float8, "
    "quality varchar(16), revision int, source varchar(16), verified bool, "
    "signature varchar(132), signer varchar(42), received_at timestamptz)"
)


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
    with driver.cursor().copy(COPY_READINGS.replace("meter_readings", "ours")) as copy:
        for part in parts:
            copy.write(part)
    with driver.cursor().copy(COPY_READINGS.replace("meter_readings", "theirs")) as copy:
        copy.set_types(TYPES)
        for record in _records(rows, "rest", received):
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


def batch(meter: str, slots: range) -> bytes:
    return orjson.dumps(
        [
            {"meterId": meter, "timestamp": iso(NOW - 900 * k), "exportWh": k % 2_000 + 1}
            for k in slots
        ]
    )


@pytest.fixture
def fresh(fresh_pg_url, meter_settings):
    engine = make_engine(fresh_pg_url)
    with Session(engine) as session:
        _, _, solar, _ = seed_meters(session)
        session.commit()
        meter_id = solar.meter_id
    yield engine, meter_id, meter_settings
    engine.dispose()


def stored(engine) -> tuple[int, int]:
    with Session(engine) as session:
        count, total = session.exec(select(func.count(), func.sum(MeterReading.export_wh))).one()
    return count, total or 0


def ingest(engine_or_session, body: bytes, settings: Settings, name: str = "gl-test-ingest"):
    """`ingest_body` in the given session, or in a new one on the engine whose connection is
    called `name` in pg_stat_activity."""
    if isinstance(engine_or_session, Session):
        return ingest_body(
            engine_or_session, body, "application/json", source="rest", now=NOW, settings=settings
        )
    with Session(engine_or_session) as session:
        session.connection().exec_driver_sql(f"SET application_name = '{name}'")
        return ingest_body(
            session, body, "application/json", source="rest", now=NOW, settings=settings
        )


def expected(slots: set[int]) -> tuple[int, int]:
    return len(slots), sum(k % 2_000 + 1 for k in slots)


def test_a_batch_arriving_while_another_is_stored_loses_nothing(fresh):
    engine, meter, settings = fresh
    first, second = range(1, 2_001), range(1_001, 3_001)  # 1,000 intervals in both
    with engine.connect() as connection:
        outer = connection.begin()  # the first batch is stored but not yet committed
        session = Session(bind=connection, join_transaction_mode="create_savepoint")
        result_a = ingest(session, batch(meter, first), settings)
        assert result_a.accepted == 2_000
        outcome = {}
        name = f"gl-test-second-{uuid.uuid4().hex[:8]}"

        def second_batch():
            try:
                outcome["b"] = ingest(engine, batch(meter, second), settings, name)
            except Exception as exc:  # shown by the assertion below
                outcome["error"] = exc

        worker = threading.Thread(target=second_batch)
        worker.start()
        with engine.connect() as probe:  # the second one waits for the first's commit
            # (its (meter, day) locks on PostgreSQL's runs, a row's transaction with rows)
            for _ in range(1_200):
                waiting = probe.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND wait_event IN ('transactionid', 'advisory') "
                        "AND application_name = :name"
                    ),
                    {"name": name},
                ).scalar_one()
                probe.rollback()  # pg_stat_activity is read once per transaction
                if waiting or not worker.is_alive():
                    break
                time.sleep(0.05)
            seen = probe.execute(
                text(
                    "SELECT wait_event_type, wait_event, state, left(query, 50) "
                    "FROM pg_stat_activity WHERE application_name = :name"
                ),
                {"name": name},
            ).all()
        assert (waiting, worker.is_alive(), outcome) == (1, True, {}), seen
        outer.commit()
        session.close()
    worker.join(60)
    result_b = outcome["b"]
    assert (result_b.accepted, result_b.duplicate, result_b.corrected) == (1_000, 1_000, 0)
    assert stored(engine) == expected(set(first) | set(second))


def test_concurrent_overlapping_batches_store_each_interval_once(fresh):
    engine, meter, settings = fresh
    ranges = [range(k * 500 + 1, k * 500 + 2_001) for k in range(4)]  # each overlaps the next
    results = []
    threads = [
        threading.Thread(
            target=lambda r=r: results.append(ingest(engine, batch(meter, r), settings))
        )
        for r in ranges
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    union = set().union(*ranges)
    assert len(results) == 4
    assert sum(r.accepted for r in results) == len(union)
    assert sum(r.accepted + r.duplicate for r in results) == 4 * 2_000
    assert stored(engine) == expected(union)

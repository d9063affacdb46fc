"""Migration i16_reading_runs: readings stored as rows before are the same readings after, as
runs of consecutive intervals behind the `meter_readings` view; an interval stored cannot go
in again; the downgrade gives the row table back with every reading. SQLite keeps its table."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from backend.core.db import make_engine
from backend.core.migrate import downgrade, upgrade
from tests.fixtures.database import revision_before
from tests.fixtures.meters import NOW, seed_meters

REVISION = "i16_reading_runs"
COLUMNS = (
    "meter_id, interval_start, interval_s, import_wh, export_wh, voltage_v, current_a, "
    "power_factor, quality, revision, source, received_at, verified, signature, signer"
)
INSERT = text(
    f"INSERT INTO meter_readings ({COLUMNS}) VALUES (:meter, :start, 900, :imp, :exp, :v, "
    "NULL, NULL, :q, :rev, 'rest', :at, :verified, :sig, :signer)"
)
SELECT = text(f"SELECT {COLUMNS} FROM meter_readings ORDER BY meter_id, interval_start")
AT = datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)


def readings(solar: str, house: str) -> list[dict]:
    """Two days of one meter with a gap, a few of another, NULLs, a signed revised reading."""
    rows = []
    for k in [*range(0, 100), *range(105, 110)]:  # crosses midnight at k = 96, gap 100-104
        rows.append(
            {
                "meter": solar,
                "start": NOW - 86_400 + 900 * k,
                "imp": None if k % 5 == 0 else k,
                "exp": 2**40 + k,
                "v": 230.5 if k % 7 == 0 else None,
                "q": "high" if k % 2 else None,
                "rev": 1 if k == 3 else 0,
                "at": AT,
                "verified": k == 3,
                "sig": "0x" + "ab" * 65 if k == 3 else None,
                "signer": "0x" + "Cd" * 20 if k == 3 else None,
            }
        )
    for k in (0, 2):
        rows.append({**rows[1], "meter": house, "start": NOW + 900 * k, "imp": 5, "exp": None})
    return rows


def as_stored(rows: list[dict]) -> list[tuple]:
    return sorted(
        (
            r["meter"],
            r["start"],
            900,
            r["imp"],
            r["exp"],
            r["v"],
            None,
            None,
            r["q"],
            r["rev"],
            "rest",
            r["at"],
            r["verified"],
            r["sig"],
            r["signer"],
        )
        for r in rows
    )


def test_postgresql_readings_move_into_runs_and_back(fresh_pg_url):
    url = fresh_pg_url
    downgrade(url, revision_before(REVISION))
    engine = make_engine(url)
    with Session(engine) as session:
        _, _, solar, house = seed_meters(session)
        solar_id, house_id = solar.meter_id, house.meter_id
        session.commit()
        rows = readings(solar_id, house_id)
        session.connection().execute(INSERT, rows)
        session.commit()
    upgrade(url, REVISION)
    with engine.connect() as connection:
        assert "meter_readings" in inspect(connection).get_view_names()
        assert [tuple(r) for r in connection.execute(SELECT)] == as_stored(rows)
        runs = connection.execute(
            text(
                "SELECT meter_id, day, first_slot, slots, import_wh IS NULL, voltage_v IS NULL "
                "FROM reading_runs ORDER BY meter_id = :s DESC, day, first_slot"
            ),
            {"s": solar_id},
        ).all()
        assert [r[1:4] for r in runs] == [
            (NOW - 86_400, 0, 96),
            (NOW, 0, 4),
            (NOW, 9, 5),
            (NOW, 0, 1),
            (NOW, 2, 1),
        ]
        assert [r[5] for r in runs] == [False, False, False, True, True]  # all-NULL: NULL array
        with pytest.raises(IntegrityError, match="meter_readings_pkey"):
            connection.execute(INSERT, {**rows[4], "imp": 9})
        connection.rollback()
    downgrade(url, revision_before(REVISION))
    with engine.connect() as connection:
        assert "meter_readings" in inspect(connection).get_table_names()
        assert [tuple(r) for r in connection.execute(SELECT)] == as_stored(rows)
        key = inspect(connection).get_pk_constraint("meter_readings")["constrained_columns"]
        assert key == ["meter_id", "interval_start"]
    engine.dispose()
    upgrade(url)


def test_sqlite_keeps_the_row_table(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        assert "meter_readings" in inspect(connection).get_table_names()
        assert "reading_runs" not in inspect(connection).get_table_names()
    engine.dispose()

"""Migration i16_reading_key: readings stored before keep their values, `id` goes, and the
interval (meter_id, interval_start) is the primary key: a second reading of it cannot go in."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from backend.core.db import make_engine
from backend.core.migrate import downgrade, upgrade
from tests.fixtures.database import revision_before
from tests.fixtures.meters import seed_meters

REVISION = "i16_reading_key"
INSERT = text(
    "INSERT INTO meter_readings (meter_id, interval_start, interval_s, import_wh, revision, "
    "source, verified, received_at) "
    "VALUES (:meter, :start, 900, :wh, 0, 'rest', false, '2026-12-01 12:00:00')"
)


def previous() -> str:
    return revision_before(REVISION)


def keyed_by_interval(url: str) -> None:
    """Two readings stored at the revision before are there after the upgrade, under the new
    key; the same interval again is refused; the downgrade gives every reading an id back."""
    engine = make_engine(url)
    with Session(engine) as session:
        _, _, solar, _ = seed_meters(session)
        meter = solar.meter_id
        session.commit()
        for start, wh in [(0, 5), (900, 7)]:
            session.connection().execute(INSERT, {"meter": meter, "start": start, "wh": wh})
        session.commit()
    upgrade(url, REVISION)
    with engine.connect() as connection:
        columns = {c["name"] for c in inspect(connection).get_columns("meter_readings")}
        key = inspect(connection).get_pk_constraint("meter_readings")["constrained_columns"]
        rows = connection.execute(
            text("SELECT interval_start, import_wh FROM meter_readings ORDER BY interval_start")
        ).all()
        assert "id" not in columns
        assert key == ["meter_id", "interval_start"]
        assert [tuple(r) for r in rows] == [(0, 5), (900, 7)]
        with pytest.raises(IntegrityError):
            connection.execute(INSERT, {"meter": meter, "start": 0, "wh": 9})
    downgrade(url, previous())
    with engine.connect() as connection:
        ids = connection.execute(text("SELECT id FROM meter_readings ORDER BY id")).scalars()
        assert len(set(ids)) == 2
        with pytest.raises(IntegrityError, match=r"uq_meter_readings_interval|UNIQUE"):
            connection.execute(INSERT, {"meter": meter, "start": 900, "wh": 9})
    engine.dispose()


def test_postgresql_readings_keyed_by_interval(fresh_pg_url):
    downgrade(fresh_pg_url, previous())
    keyed_by_interval(fresh_pg_url)
    upgrade(fresh_pg_url)


def test_sqlite_readings_keyed_by_interval(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url, previous())
    keyed_by_interval(url)
    upgrade(url)

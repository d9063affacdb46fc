"""Migration i17_telemetry_unique: duplicate telemetry rows (a QoS 1 message stored twice) are
removed, the oldest of each (resource_id, metric, at) kept, and the key is unique afterwards."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from backend.core.db import make_engine
from backend.core.migrate import downgrade, upgrade
from tests.fixtures.database import revision_before
from tests.fixtures.meters import seed_meters
from tests.fixtures.resources import add_resource

REVISION = "i17_telemetry_unique"
INSERT = text(
    "INSERT INTO der_telemetry (resource_id, metric, at, value, received_at) "
    "VALUES (:rid, :metric, :at, :value, '2026-12-01 12:00:00')"
)


def previous() -> str:
    return revision_before(REVISION)


def duplicates_removed(url: str) -> None:
    """At the revision before: 3 samples, two of them stored twice (the second copy with
    another value); after the upgrade the first copies remain and a copy cannot go in again."""
    engine = make_engine(url)
    with Session(engine) as session:
        owner, *_ = seed_meters(session)
        rid = add_resource(session, owner).id.hex
        session.commit()
        for at, value in [(0, 1), (900, 2), (1800, 3), (0, 10), (900, 20)]:
            session.connection().execute(
                INSERT, {"rid": rid, "metric": "soc", "at": at, "value": value}
            )
        session.connection().execute(INSERT, {"rid": rid, "metric": "output", "at": 0, "value": 7})
        session.commit()
    upgrade(url, REVISION)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT metric, at, value FROM der_telemetry ORDER BY metric, at")
        ).all()
        assert [tuple(r) for r in rows] == [
            ("output", 0, 7),
            ("soc", 0, 1),
            ("soc", 900, 2),
            ("soc", 1800, 3),
        ]
        with pytest.raises(IntegrityError, match=r"uq_der_telemetry|UNIQUE"):
            connection.execute(INSERT, {"rid": rid, "metric": "soc", "at": 0, "value": 5})
    engine.dispose()


def test_postgresql_duplicates_removed_and_the_key_unique(fresh_pg_url):
    downgrade(fresh_pg_url, previous())
    duplicates_removed(fresh_pg_url)


def test_sqlite_duplicates_removed_and_the_key_unique(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url, previous())
    duplicates_removed(url)
    downgrade(url, previous())  # and back down: the index of before
    upgrade(url)

"""Migration i17_telemetry_key: samples stored before keep their values, `id` and the foreign
key go, and (resource_id, metric, at) is the primary key: a sample cannot go in twice."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from backend.core.db import make_engine
from backend.core.migrate import downgrade, upgrade
from tests.fixtures.database import revision_before
from tests.fixtures.meters import seed_meters
from tests.fixtures.resources import add_resource

REVISION = "i17_telemetry_key"
INSERT = text(
    "INSERT INTO der_telemetry (resource_id, metric, at, value, received_at) "
    "VALUES (:rid, :metric, :at, :value, '2026-12-01 12:00:00')"
)


def previous() -> str:
    return revision_before(REVISION)


def keyed_by_sample(url: str) -> None:
    """Two samples stored at the revision before are there after the upgrade, under the new
    key, with no foreign key left; the same sample again is refused; the downgrade gives every
    sample an id and the foreign key back."""
    engine = make_engine(url)
    with Session(engine) as session:
        owner, *_ = seed_meters(session)
        rid = add_resource(session, owner).id.hex
        session.commit()
        for metric, value in [("output", 5), ("soc", 7)]:
            session.connection().execute(
                INSERT, {"rid": rid, "metric": metric, "at": 0, "value": value}
            )
        session.commit()
    upgrade(url, REVISION)
    with engine.connect() as connection:
        inspector = inspect(connection)
        columns = {c["name"] for c in inspector.get_columns("der_telemetry")}
        key = inspector.get_pk_constraint("der_telemetry")["constrained_columns"]
        rows = connection.execute(
            text("SELECT metric, value FROM der_telemetry ORDER BY metric")
        ).all()
        assert "id" not in columns
        assert key == ["resource_id", "metric", "at"]
        assert inspector.get_foreign_keys("der_telemetry") == []
        assert [tuple(r) for r in rows] == [("output", 5), ("soc", 7)]
        with pytest.raises(IntegrityError):
            connection.execute(INSERT, {"rid": rid, "metric": "soc", "at": 0, "value": 9})
    downgrade(url, previous())
    with engine.connect() as connection:
        ids = connection.execute(text("SELECT id FROM der_telemetry ORDER BY id")).scalars()
        assert len(set(ids)) == 2
        assert [
            fk["referred_table"] for fk in inspect(connection).get_foreign_keys("der_telemetry")
        ] == ["der_resources"]
        with pytest.raises(IntegrityError, match=r"uq_der_telemetry|UNIQUE"):
            connection.execute(INSERT, {"rid": rid, "metric": "output", "at": 0, "value": 9})
    engine.dispose()


def test_postgresql_telemetry_keyed_by_sample(fresh_pg_url):
    downgrade(fresh_pg_url, previous())
    keyed_by_sample(fresh_pg_url)
    upgrade(fresh_pg_url)


def test_sqlite_telemetry_keyed_by_sample(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url, previous())
    keyed_by_sample(url)
    upgrade(url)

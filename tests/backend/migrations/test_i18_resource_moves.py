"""Migration i18_resource_moves: resources registered before keep their row and have no move
(they were never moved); the table takes a move naming known meters only; the downgrade drops
it and leaves the resources."""

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

REVISION = "i18_resource_moves"
INSERT = text(
    "INSERT INTO der_resource_moves (resource_id, from_meter_id, to_meter_id, moved_at, moved_by) "
    "VALUES (:rid, :src, :dst, '2026-12-01 12:00:00', :by)"
)


def moves_kept(url: str) -> None:
    engine = make_engine(url)
    with Session(engine) as session:
        owner, _other, solar, house = seed_meters(session)
        rid = add_resource(session, owner).id
        session.commit()
        owner_id, solar_id, house_id = owner.id, solar.meter_id, house.meter_id
    upgrade(url, REVISION)
    hexed = {"rid": rid.hex, "by": owner_id.hex}
    if engine.dialect.name == "postgresql":
        hexed = {"rid": str(rid), "by": str(owner_id)}
    with engine.begin() as connection:
        assert connection.execute(text("SELECT count(*) FROM der_resource_moves")).scalar() == 0
        connection.execute(INSERT, {**hexed, "src": solar_id, "dst": house_id})
        keys = inspect(connection).get_foreign_keys("der_resource_moves")
        referred = {fk["referred_table"] for fk in keys}
        assert referred == {"der_resources", "meters", "accounts"}
    with engine.begin() as connection, pytest.raises(IntegrityError):  # an unknown meter
        connection.execute(INSERT, {**hexed, "src": solar_id, "dst": "0x" + "00" * 32})
    downgrade(url, revision_before(REVISION))
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        assert "der_resource_moves" not in tables
        assert connection.execute(text("SELECT count(*) FROM der_resources")).scalar() == 1
    engine.dispose()


def test_postgresql_resource_moves(fresh_pg_url):
    downgrade(fresh_pg_url, revision_before(REVISION))
    moves_kept(fresh_pg_url)
    upgrade(fresh_pg_url)


def test_sqlite_resource_moves(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url, revision_before(REVISION))
    moves_kept(url)
    upgrade(url)

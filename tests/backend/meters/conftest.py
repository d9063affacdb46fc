"""A participant with two meters, on PostgreSQL (rolled back) or on a fresh SQLite file."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from backend.accounts.models import Account
from backend.core.db import make_engine
from backend.core.migrate import upgrade
from backend.meters.models import MeterKind
from backend.meters.schemas import MeterCreate
from backend.meters.services import register_meter

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z, a 15-minute boundary


def seed_meters(session: Session):
    owner = Account(email="owner@example.org", address="0x" + "aa" * 20)
    other = Account(email="other@example.org", address="0x" + "bb" * 20)
    session.add_all([owner, other])
    session.flush()
    solar = register_meter(
        session,
        owner,
        MeterCreate(
            name="meter:solar-1",
            kind=MeterKind.BOTH,
            capacity_w=10_000,
            mqtt_password="solar-secret-123",
        ),
    )
    house = register_meter(
        session, owner, MeterCreate(name="meter:house-1", kind=MeterKind.IMPORT, capacity_w=20_000)
    )
    return owner, other, solar, house


@pytest.fixture
def metered(db_session):
    return (db_session, *seed_meters(db_session))


@pytest.fixture
def sqlite_metered(tmp_path):
    url = f"sqlite:///{tmp_path / 'gl.db'}"
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        yield (session, *seed_meters(session))
    engine.dispose()

"""MQTT: readings of one interval in one subscriber batch — the last one in message order wins,
whether they come in separate messages (plain or the general way) or in one batched message."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select

from backend.core.config import Settings
from backend.core.db import make_engine
from backend.deadletters.models import DeadLetter
from backend.meters.models import MeterReading, ReadingCorrection
from backend.meters.mqtt import Subscriber
from backend.meters.validation import iso
from tests.fixtures.meters import NOW, seed_meters
from tests.fixtures.mqtt import unique

START = NOW - 1800


def topic(root: str) -> str:
    return f"{root}/seoul/solar-panel/meter:solar-1/reading"


def body(export: float, **extra: object) -> dict:
    return {"timestamp": iso(START), "exportWh": export, **extra}


@pytest.fixture
def subscriber(fresh_pg_url):
    engine = make_engine(fresh_pg_url)
    with Session(engine) as session:
        seed_meters(session)
        session.commit()
    settings = Settings(_env_file=None, database_url=fresh_pg_url)
    subscriber = Subscriber(settings=settings, client_id=unique("i16-signed-ingest"))
    subscriber.now = lambda: NOW
    yield subscriber, engine
    subscriber.engine.dispose()
    engine.dispose()


def stored(engine) -> tuple[list[int | None], list[tuple[int | None, int | None]], int]:
    """(export Wh of START, corrections of it as (previous, new), dead letters)."""
    with Session(engine) as session:
        exports = session.exec(
            select(MeterReading.export_wh).where(MeterReading.interval_start == START)
        ).all()
        audit = session.exec(
            select(ReadingCorrection.previous_export_wh, ReadingCorrection.export_wh)
        ).all()
        letters = len(session.exec(select(DeadLetter)).all())
    return list(exports), [tuple(a) for a in audit], letters


@pytest.mark.parametrize(
    "first, second, last_wh",
    [
        pytest.param(body(5), body(6), 6, id="plain-messages"),
        pytest.param(body(0.005, unit="kWh"), body(6), 6, id="general-then-plain"),
        pytest.param(body(6), body(0.005, unit="kWh"), 5, id="plain-then-general"),
    ],
)
def test_separate_messages_in_one_batch_the_later_wins(subscriber, first, second, last_wh):
    sub, engine = subscriber
    root = sub.settings.mqtt_topic_root
    sub.pending = [
        (1, 0, topic(root), json.dumps(first).encode()),
        (2, 0, topic(root), json.dumps(second).encode()),
    ]
    result = sub.flush()
    assert result is not None
    assert (result.received, result.accepted, result.corrected, result.superseded) == (2, 1, 1, 1)
    exports, audit, letters = stored(engine)
    assert exports == [last_wh]
    assert len(audit) == 1 and audit[0][1] == last_wh  # the earlier value kept in the audit
    assert letters == 0


@pytest.mark.parametrize("general", [False, True], ids=["plain", "general"])
def test_one_batched_message_with_an_interval_twice_the_later_element_wins(subscriber, general):
    sub, engine = subscriber
    root = sub.settings.mqtt_topic_root
    other = {"timestamp": iso(NOW - 900), "exportWh": 1}
    earlier = body(0.004, unit="kWh") if general else body(4)
    payload = json.dumps([earlier, other, body(7)]).encode()
    sub.pending = [(1, 0, topic(root), payload)]
    result = sub.flush()
    assert result is not None
    assert (result.accepted, result.corrected, result.superseded) == (2, 1, 1)
    assert [(s.index, s.by) for s in result.supersededReadings] == [(0, 2)]
    exports, audit, letters = stored(engine)
    assert (exports, audit, letters) == ([7], [(4, 7)], 0)

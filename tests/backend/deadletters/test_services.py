"""Dead letters: one row per distinct message, repeats counted, payload capped."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from backend.deadletters import services
from backend.deadletters.models import DeadLetter

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def record(session, payload: bytes, reason: str = "bad", *, topic: str = "t/1", at=T0) -> None:
    services.record(
        session.connection(),
        source="mqtt",
        topic=topic,
        payload=payload,
        reason=reason,
        max_bytes=8,
        now=at,
    )


def test_a_repeat_counts_instead_of_adding_a_row(db_session):
    record(db_session, b"\xff\x00poison-payload")
    record(db_session, b"\xff\x00poison-payload", "worse", at=T0 + timedelta(minutes=5))
    record(db_session, b"\xff\x00poison-payload", topic="t/2")  # another topic: another row
    letters = db_session.exec(select(DeadLetter).order_by(DeadLetter.id)).all()
    assert [(d.topic, d.count, d.reason) for d in letters] == [
        ("t/1", 2, "worse"),
        ("t/2", 1, "bad"),
    ]
    first = letters[0]
    assert (first.payload, first.payload_size) == (b"\xff\x00poison", 16)  # capped at 8 bytes
    assert (first.first_seen, first.last_seen) == (T0, T0 + timedelta(minutes=5))
    assert services.stats(db_session) == services.DeadLetterStats(messages=2, received=3)


def test_public_view_shows_the_raw_bytes_and_a_readable_preview(db_session):
    record(db_session, b'{"unit": ["Wh"]}\xff', "unit must be Wh or kWh, got list")
    db_session.flush()
    items, cursor = services.entries(db_session, cursor=None, limit=10)
    assert cursor is None
    (item,) = items
    assert base64.b64decode(item.payload_base64) == b'{"unit":'  # the first 8 bytes
    assert item.payload_preview == '{"unit":'
    assert item.payload_size == 17 and item.count == 1

"""Recording poison messages and reading them back.

A component that cannot process a message records it here and acknowledges it, so the broker
never hands it out again; the same message received again counts instead of adding a row.
Recording is part of the caller's transaction (the caller commits, then acknowledges).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from backend.core.pagination import keyset_page
from backend.core.utc import utc_now
from backend.deadletters.models import DeadLetter
from backend.deadletters.schemas import DeadLetterPublic

MAX_REASON = 1_000
MAX_TOPIC = 512
PREVIEW_CHARS = 2_000


@dataclass(frozen=True)
class DeadLetterStats:
    messages: int  # distinct dead letters (rows)
    received: int  # deliveries, repeats included


def digest(source: str, topic: str, payload: bytes) -> str:
    return hashlib.sha256(b"\0".join((source.encode(), topic.encode(), payload))).hexdigest()


def record(
    connection: Connection,
    *,
    source: str,
    topic: str,
    payload: bytes,
    reason: str,
    max_bytes: int,
    now: datetime | None = None,
) -> None:
    """Insert the dead letter, or count one more delivery of it (and keep the latest reason)."""
    now = now or utc_now()
    topic = topic.encode("utf-8", "replace").decode()[:MAX_TOPIC]  # lone surrogates
    values = {
        "source": source,
        "topic": topic,
        "digest": digest(source, topic, payload),
        "payload": bytes(payload[:max_bytes]),
        "payload_size": len(payload),
        "reason": reason.encode("utf-8", "replace").decode()[:MAX_REASON].replace("\0", ""),
        "first_seen": now,
        "last_seen": now,
        "count": 1,
    }
    insert = (postgresql if connection.dialect.name == "postgresql" else sqlite).insert
    table = DeadLetter.__table__  # type: ignore[attr-defined]
    statement = insert(table).values(values)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["digest"],
            set_={
                "count": table.c.count + 1,
                "last_seen": statement.excluded.last_seen,
                "reason": statement.excluded.reason,
            },
        )
    )


def stats(session: Session) -> DeadLetterStats:
    messages, received = session.exec(
        select(func.count(), func.coalesce(func.sum(col(DeadLetter.count)), 0))
    ).one()
    return DeadLetterStats(messages=int(messages), received=int(received))


def public(letter: DeadLetter) -> DeadLetterPublic:
    return DeadLetterPublic(
        id=letter.id or 0,
        source=letter.source,
        topic=letter.topic,
        reason=letter.reason,
        payload_base64=base64.b64encode(letter.payload).decode(),
        payload_preview=letter.payload[: PREVIEW_CHARS * 4].decode("utf-8", "replace")[
            :PREVIEW_CHARS
        ],
        payload_size=letter.payload_size,
        first_seen=_aware(letter.first_seen),
        last_seen=_aware(letter.last_seen),
        count=letter.count,
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite drops the zone


def entries(
    session: Session, *, cursor: str | None, limit: int, source: str | None = None
) -> tuple[list[DeadLetterPublic], str | None]:
    """Newest first (by first seen), optionally of one source."""
    query = select(DeadLetter)
    if source:
        query = query.where(col(DeadLetter.source) == source)
    rows, next_cursor = keyset_page(session, query, DeadLetter.id, cursor, limit)
    return [public(row) for row in rows], next_cursor

"""Reading the outbox in order: the `outbox` table (when no Redis is configured) and the
Redis stream.

The indexer and the API processes insert outbox rows in concurrent transactions, so a lower
id can commit after a higher one was read. Ids skipped over are asked for again for
`grace_s` seconds before they are given up (a rolled-back insert leaves a hole for good).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from sqlmodel import col

from indexer.models import OutboxMessage

MAX_HOLES = 10_000

StreamEntry = tuple[bytes, dict[bytes, bytes]]  # (entry id, fields) as redis-py returns them


class OutboxTail:
    def __init__(
        self, last_id: int, grace_s: float = 10.0, clock: Callable[[], float] = time.monotonic
    ):
        self.last_id = last_id
        self.grace_s = grace_s
        self.clock = clock
        self.holes: dict[int, float] = {}  # id not seen yet -> when it was skipped

    @classmethod
    def at_end(
        cls,
        session: Session,
        *,
        grace_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> OutboxTail:
        """A tail that starts after the newest row."""
        newest = session.execute(
            select(func.coalesce(func.max(col(OutboxMessage.id)), 0))
        ).scalar_one()
        return cls(newest or 0, grace_s=grace_s, clock=clock)  # coalesce: never None

    def read(self, session: Session, limit: int = 100) -> list[tuple[int, str, dict[str, Any]]]:
        """(id, topic, payload) of rows not read before: new ones and late ones, by id."""
        message_id = col(OutboxMessage.id)
        newer = message_id > self.last_id
        rows = session.execute(
            select(message_id, col(OutboxMessage.topic), col(OutboxMessage.payload))
            .where(or_(newer, message_id.in_(list(self.holes))) if self.holes else newer)
            .order_by(message_id)
            .limit(limit)
        ).all()
        now = self.clock()
        seen = {row[0] for row in rows}
        for seen_id in seen:
            self.holes.pop(seen_id, None)
        top = max(seen, default=self.last_id)
        if top > self.last_id:
            for missing in range(max(self.last_id + 1, top - MAX_HOLES), top):
                if missing not in seen:
                    self.holes[missing] = now
            self.last_id = top
        self.holes = {h: since for h, since in self.holes.items() if now - since <= self.grace_s}
        return [(row_id, topic, payload) for row_id, topic, payload in rows]


async def stream_batches(
    client: aioredis.Redis, stream: str, block_ms: int, count: int
) -> AsyncIterator[list[StreamEntry]]:
    """Yield the outbox stream's new entries, batch by batch, from the moment it is called
    (the Redis counterpart of `OutboxTail`)."""
    latest = await client.xrevrange(stream, count=1)
    last_id = latest[0][0] if latest else b"0-0"
    while True:
        for _, entries in await client.xread({stream: last_id}, block=block_ms, count=count) or []:
            if entries:
                last_id = entries[-1][0]
                yield entries

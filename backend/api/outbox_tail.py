"""Reading the outbox in order: the `outbox` table (when no Redis is configured) and the Redis stream.

The indexer and the API processes insert outbox rows in concurrent transactions, so a lower
id can commit after a higher one was read. Ids skipped over are asked for again for
`grace_s` seconds before they are given up (a rolled-back insert leaves a hole for good).
"""

from __future__ import annotations

import time

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from indexer.models import OutboxMessage

MAX_HOLES = 10_000


class OutboxTail:
    def __init__(self, last_id: int, grace_s: float = 10.0, clock=time.monotonic):
        self.last_id = last_id
        self.grace_s = grace_s
        self.clock = clock
        self.holes: dict[int, float] = {}  # id not seen yet -> when it was skipped

    @classmethod
    def at_end(cls, session: Session, **kwargs) -> OutboxTail:
        """A tail that starts after the newest row."""
        t = OutboxMessage.__table__
        return cls(
            session.execute(select(func.coalesce(func.max(t.c.id), 0))).scalar_one(), **kwargs
        )

    def read(self, session: Session, limit: int = 100) -> list[tuple[int, str, dict]]:
        """(id, topic, payload) of rows not read before: new ones and late ones, by id."""
        t = OutboxMessage.__table__
        newer = t.c.id > self.last_id
        rows = session.execute(
            select(t.c.id, t.c.topic, t.c.payload)
            .where(or_(newer, t.c.id.in_(list(self.holes))) if self.holes else newer)
            .order_by(t.c.id)
            .limit(limit)
        ).all()
        now = self.clock()
        seen = {row[0] for row in rows}
        for message_id in seen:
            self.holes.pop(message_id, None)
        top = max(seen, default=self.last_id)
        if top > self.last_id:
            for missing in range(max(self.last_id + 1, top - MAX_HOLES), top):
                if missing not in seen:
                    self.holes[missing] = now
            self.last_id = top
        self.holes = {h: since for h, since in self.holes.items() if now - since <= self.grace_s}
        return [tuple(row) for row in rows]


async def stream_batches(client, stream: str, block_ms: int, count: int):
    """Yield the outbox stream's new entries, batch by batch, from the moment it is called
    (the Redis counterpart of `OutboxTail`); `client` is a redis.asyncio client."""
    latest = await client.xrevrange(stream, count=1)
    last_id = latest[0][0] if latest else b"0-0"
    while True:
        for _, entries in await client.xread({stream: last_id}, block=block_ms, count=count) or []:
            if entries:
                last_id = entries[-1][0]
                yield entries

"""Hand-off to the workers: publish outbox rows after their transaction committed.

A crash between commit and publish loses nothing: unpublished rows are sent on the next
call. Delivery is at-least-once; consumers de-duplicate by the message id. Several
publishers may run (the indexer, and each API process relaying its own order events):
rows are claimed with `FOR UPDATE SKIP LOCKED`, so one publisher sends each.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from backend.core.db import table_of
from backend.core.utc import utc_now
from indexer.models import OutboxMessage


class Sink(Protocol):
    def send(self, messages: list[dict[str, Any]]) -> None: ...


class RedisStreamSink:
    """Appends messages to a Redis stream (`XADD`), where workers consume them."""

    def __init__(self, redis_url: str, stream: str = "gridledger:outbox", maxlen: int = 100_000):
        import redis

        self.client = redis.Redis.from_url(redis_url)
        self.stream = stream
        self.maxlen = maxlen

    def send(self, messages: list[dict[str, Any]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for message in messages:
            pipe.xadd(
                self.stream,
                {
                    "id": message["id"],
                    "topic": message["topic"],
                    "block_number": message["block_number"],
                    "payload": json.dumps(message["payload"]),
                },
                maxlen=self.maxlen,
                approximate=True,
            )
        pipe.execute()


class OutboxPublisher:
    def __init__(self, engine: Engine, sink: Sink, batch_size: int = 1_000):
        self.engine = engine
        self.sink = sink
        self.batch_size = batch_size

    def publish_pending(self) -> int:
        t = table_of(OutboxMessage)
        published = 0
        while True:
            with self.engine.begin() as connection:
                rows = (
                    connection.execute(
                        select(t.c.id, t.c.topic, t.c.block_number, t.c.payload)
                        .where(t.c.published_at.is_(None))
                        .order_by(t.c.id)
                        .limit(self.batch_size)
                        .with_for_update(skip_locked=True)
                    )
                    .mappings()
                    .all()
                )
                if not rows:
                    return published
                self.sink.send([dict(r) for r in rows])
                connection.execute(
                    update(t)
                    .where(t.c.id.in_([r["id"] for r in rows]))
                    .values(published_at=utc_now())
                )
            published += len(rows)

"""The WebSocket's table feed (no Redis) sees outbox rows committed out of id order."""

from __future__ import annotations

from sqlalchemy import insert
from sqlmodel import Session

from backend.api.outbox_tail import OutboxTail
from backend.core.db import make_engine
from backend.core.utc import utc_now
from indexer.models import OutboxMessage


def row(topic: str) -> dict:
    return {
        "chain_id": 31337,
        "block_number": 0,
        "topic": topic,
        "payload": {},
        "created_at": utc_now(),
    }


def test_a_row_committed_after_a_newer_one_is_still_read(fresh_pg_url):
    engine = make_engine(fresh_pg_url)
    clock = [0.0]
    outbox = OutboxMessage.__table__
    try:
        with Session(engine) as reader:
            tail = OutboxTail.at_end(reader, grace_s=10, clock=lambda: clock[0])
            slow = engine.connect()
            slow_tx = slow.begin()
            slow.execute(insert(outbox), [row("order.placed")])  # takes the lower id, commits last
            with engine.begin() as fast:
                fast.execute(insert(outbox), [row("trade.created")])
            assert [topic for _, topic, _ in tail.read(reader)] == ["trade.created"]
            reader.rollback()
            slow_tx.commit()
            slow.close()
            assert [topic for _, topic, _ in tail.read(reader)] == ["order.placed"]
            reader.rollback()
            assert tail.read(reader) == [] and tail.holes == {}

            # an insert rolled back leaves a hole that is given up after the grace period
            with engine.connect() as aborted, aborted.begin() as transaction:
                aborted.execute(insert(outbox), [row("order.cancelled")])
                transaction.rollback()
            with engine.begin() as fast:
                fast.execute(insert(outbox), [row("order.placed")])
            reader.rollback()
            assert len(tail.read(reader)) == 1 and len(tail.holes) == 1
            clock[0] = 11.0
            reader.rollback()
            assert tail.read(reader) == [] and tail.holes == {}
    finally:
        engine.dispose()

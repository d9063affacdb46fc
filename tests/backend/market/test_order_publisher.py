"""The group commit's publisher (backend/market/order_publisher.py) on real PostgreSQL and
Redis: batches committed while a publish waits for its interval go out in one publish, in
commit order, and are marked published; a publish the stream refuses leaves its rows to the
relay and the next batches are still published."""

from __future__ import annotations

import time

import pytest
from sqlmodel import Session, select

from backend.core.async_db import libpq_conninfo
from backend.core.config import Settings
from backend.core.db import make_engine
from backend.core.utc import utc_now
from backend.market import order_publisher
from backend.market.order_publisher import OrderPublisher
from indexer.models import OutboxMessage
from tests.fixtures.services import TEST_REDIS_URL


@pytest.fixture
def outbox(fresh_pg_url):
    """(settings, engine, add): `add(n)` commits n order.placed rows and returns their
    messages as the writer hands them to the publisher."""
    engine = make_engine(fresh_pg_url)
    settings = Settings(
        _env_file=None,
        database_url=fresh_pg_url,
        redis_url=TEST_REDIS_URL,
        intake_publish_interval_s=0.3,
    )

    def add(n: int) -> list[dict]:
        with Session(engine) as session:
            rows = [
                OutboxMessage(
                    chain_id=1,
                    block_number=0,
                    topic="order.placed",
                    payload={"order_hash": f"0x{i}"},
                    created_at=utc_now(),
                )
                for i in range(n)
            ]
            session.add_all(rows)
            session.commit()
            return [
                {"id": r.id, "topic": r.topic, "block_number": 0, "payload": r.payload}
                for r in rows
            ]

    yield settings, engine, add
    engine.dispose()


def unpublished(engine) -> int:
    with Session(engine) as session:
        rows = session.exec(select(OutboxMessage).where(OutboxMessage.published_at.is_(None)))
        return len(rows.all())


def test_batches_committed_during_the_interval_go_out_in_one_publish(
    outbox, redis_client, monkeypatch
):
    settings, engine, add = outbox
    calls: list[int] = []
    original = order_publisher.publish

    def counted(connection, sink, messages):
        calls.append(len(messages))
        original(connection, sink, messages)

    monkeypatch.setattr(order_publisher, "publish", counted)
    batches = [add(2), add(3), add(1), add(4)]
    publisher = OrderPublisher(settings, libpq_conninfo(settings.database_url) or "")
    publisher.put(batches[0])  # the first publish starts at once
    deadline = time.monotonic() + 10
    while not calls:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    for batch in batches[1:]:  # within its interval: they wait, then go out together
        publisher.put(batch)
    publisher.close()

    assert calls == [2, 8]
    entries = redis_client.xrange(settings.outbox_stream)
    sent = [int(fields[b"id"]) for _, fields in entries]
    assert sent == [m["id"] for batch in batches for m in batch]  # commit order
    assert unpublished(engine) == 0


def test_a_refused_publish_leaves_its_rows_to_the_relay_and_the_next_ones_go_out(
    outbox, redis_client, monkeypatch
):
    settings, engine, add = outbox
    settings = settings.model_copy(update={"intake_publish_interval_s": 0.0})
    failing = {"left": 1}
    original = order_publisher.publish

    def flaky(connection, sink, messages):
        if failing["left"]:
            failing["left"] -= 1
            with connection.transaction():  # the claim is made, then the stream fails
                connection.execute("UPDATE outbox SET published_at = now()")
                raise order_publisher.redis.ConnectionError("stream unreachable")
        original(connection, sink, messages)

    monkeypatch.setattr(order_publisher, "publish", flaky)
    first = add(2)
    publisher = OrderPublisher(settings, libpq_conninfo(settings.database_url) or "")
    publisher.put(first)
    publisher.close()
    assert unpublished(engine) == 2  # rolled back: the relay will send them
    assert redis_client.xlen(settings.outbox_stream) == 0

    second = add(3)
    publisher = OrderPublisher(settings, libpq_conninfo(settings.database_url) or "")
    publisher.put(second)
    publisher.close()
    assert unpublished(engine) == 2  # the first batch's rows, still the relay's
    assert redis_client.xlen(settings.outbox_stream) == 3

"""The API's background outbox relay (backend/market/order_events.py): every committed row
reaches the Redis stream exactly once, however commits and relay runs interleave."""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select
from sqlmodel import Session

from backend.core.db import make_engine
from backend.market.order_events import _Relay
from indexer.models import OutboxMessage
from indexer.outbox import RedisStreamSink
from tests.fixtures.services import TEST_REDIS_URL

WRITERS, ROWS_EACH = 8, 25
STREAM = "gridledger:test-relay"


def test_concurrent_commits_are_all_published_once(fresh_pg_url, redis_client):
    engine = make_engine(fresh_pg_url)
    relay = _Relay(engine, RedisStreamSink(TEST_REDIS_URL, stream=STREAM))
    runs = 0
    publish = relay.publisher.publish_pending

    def counted_publish():
        nonlocal runs
        runs += 1
        time.sleep(0.005)  # a slow relay: commits pile up while it runs
        return publish()

    relay.publisher.publish_pending = counted_publish

    def writer(n: int):
        for i in range(ROWS_EACH):
            with Session(engine) as session:
                session.add(
                    OutboxMessage(
                        chain_id=31337,
                        block_number=0,
                        topic="order.placed",
                        payload={"writer": n, "i": i},
                    )
                )
                session.commit()
            relay.schedule()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    t = OutboxMessage.__table__
    deadline = time.monotonic() + 10
    with engine.connect() as connection:
        while connection.execute(
            select(func.count()).where(t.c.published_at.is_(None))
        ).scalar_one():
            assert time.monotonic() < deadline, "committed rows were left unpublished"
            time.sleep(0.02)
            connection.rollback()
    entries = redis_client.xrange(STREAM)
    ids = [int(fields[b"id"]) for _, fields in entries]
    assert len(ids) == len(set(ids)) == WRITERS * ROWS_EACH
    assert 1 <= runs < WRITERS * ROWS_EACH  # coalesced: fewer runs than commits
    relay.executor.shutdown(wait=True)
    engine.dispose()

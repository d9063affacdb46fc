"""Order events (`order.placed`, `order.cancelled`) into the outbox, in the caller's transaction.

The order row and its message commit together, so every API process's WebSocket feed learns
of the change through the outbox like it learns of the indexer's trades: from the Redis
stream, or from the table when no Redis is configured. With Redis, the message is relayed
right after commit by a background thread (the indexer's next relay picks it up if that
fails). API messages carry block 0: they are not chain facts, so a reorg's rewind keeps them.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import redis
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from backend.core.config import Settings
from backend.core.utc import utc_now
from backend.market.ids import SIDE_NAMES, market_id_of
from backend.market.models import SignedOrder
from indexer.models import OutboxMessage
from indexer.outbox import OutboxPublisher, RedisStreamSink

log = logging.getLogger("gridledger.market")

RELAY_INTERVAL_S = 0.05  # at most 20 relay runs a second per process


def announce(session: Session, settings: Settings, topic: str, order: SignedOrder) -> None:
    """Queue `topic` about `order` in the session's transaction; relayed after it commits."""
    queue_message(session, settings, topic, payload_of(order))


def payload_of(order: SignedOrder) -> dict[str, object]:
    """What an order event says about `order` (the group commit writes the same rows,
    backend/market/order_writer.py)."""
    return payload(
        order_hash=order.order_hash,
        product=order.product,
        asset_id=order.asset_id,
        delivery_start=order.delivery_start,
        side=order.side,
        price=order.price,
    )


def payload(
    *, order_hash: str, product: int, asset_id: int, delivery_start: int, side: int, price: int
) -> dict[str, object]:
    """`payload_of` from the row's values (the group commit has no `SignedOrder`)."""
    return {
        "order_hash": order_hash,
        "market_id": market_id_of(
            product=product, asset_id=asset_id, delivery_start=delivery_start
        ),
        "side": SIDE_NAMES[side],
        "price": str(price),  # an amount: a decimal string (core.json_ints)
    }


def queue_message(
    session: Session, settings: Settings, topic: str, payload: dict[str, object]
) -> None:
    """Queue any API-side outbox message (block 0) in the session's transaction; relayed to
    the Redis stream after it commits (DER telemetry uses it too, backend/resources)."""
    session.add(
        OutboxMessage(
            chain_id=settings.chain_id,
            block_number=0,
            topic=topic,
            created_at=utc_now(),
            payload=payload,
        )
    )
    if settings.redis_url and "outbox_settings" not in session.info:
        session.info["outbox_settings"] = settings
        event.listen(session, "after_commit", _relay, once=True)


@lru_cache(maxsize=4)
def _sink(redis_url: str, stream: str) -> RedisStreamSink:
    return RedisStreamSink(redis_url, stream=stream)


def stream_sink(settings: Settings) -> RedisStreamSink:
    """The outbox's Redis stream of `settings` (the group commit publishes to it itself)."""
    return _sink(settings.redis_url, settings.outbox_stream)


class _Relay:
    """Publishes committed outbox rows from one background thread, so a request does not wait
    for it and orders committed meanwhile go out together (one SELECT, one XADD pipeline).

    `pending` is cleared before publishing: a commit that lands during a run schedules the
    next one, so no row is left behind until the indexer's next relay. Runs start at least
    RELAY_INTERVAL_S apart: under a stream of group commits (backend/market/order_writer.py) a
    relay run after every batch took a fifth of the API process's CPU in the order-intake
    profile; rows committed meanwhile go out in the next run."""

    def __init__(self, engine: Engine, sink: RedisStreamSink):
        self.publisher = OutboxPublisher(engine, sink)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-relay")
        self.lock = threading.Lock()
        self.pending = False
        self.last_run = 0.0

    def schedule(self) -> None:
        with self.lock:
            if self.pending:
                return
            self.pending = True
        self.executor.submit(self._run)

    def _run(self) -> None:
        time.sleep(max(0.0, self.last_run + RELAY_INTERVAL_S - time.monotonic()))
        with self.lock:
            self.pending = False
        self.last_run = time.monotonic()
        try:
            self.publisher.publish_pending()
        except (redis.RedisError, SQLAlchemyError) as exc:  # committed rows wait for the next relay
            log.warning("outbox relay after commit failed: %s", exc)


_relays: dict[tuple[int, str, str], _Relay] = {}
_relays_lock = threading.Lock()
MAX_RELAYS = 8  # one per (engine, stream); a process normally has one


def _relay(session: Session) -> None:
    settings = session.info.pop("outbox_settings")
    relay_committed(session.get_bind().engine, settings)


def relay_committed(engine: Engine, settings: Settings) -> None:
    """Publish the outbox rows committed on `engine`'s database, from the relay thread."""
    key = (id(engine), settings.redis_url, settings.outbox_stream)
    with _relays_lock:
        relay = _relays.get(key)
        if relay is None or relay.publisher.engine is not engine:
            while len(_relays) >= MAX_RELAYS:
                _relays.pop(next(iter(_relays))).executor.shutdown(wait=False)
            relay = _relays[key] = _Relay(engine, _sink(settings.redis_url, settings.outbox_stream))
    relay.schedule()

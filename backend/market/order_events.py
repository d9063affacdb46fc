"""Order events (`order.placed`, `order.cancelled`) into the outbox, in the caller's transaction.

The order row and its message commit together, so every API process's WebSocket feed learns
of the change through the outbox like it learns of the indexer's trades: from the Redis
stream, or from the table when no Redis is configured. With Redis, the message is relayed
right after commit (the indexer's next relay picks it up if that fails). API messages carry
block 0: they are not chain facts, so a reorg's rewind keeps them.
"""
from __future__ import annotations

import logging
from functools import lru_cache

import redis
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from backend.core.config import Settings
from backend.market import orders as eip712
from backend.market.models import SignedOrder
from indexer.models import OutboxMessage, utc_now
from indexer.outbox import OutboxPublisher, RedisStreamSink

log = logging.getLogger("gridledger.market")


def announce(session: Session, settings: Settings, topic: str, order: SignedOrder) -> None:
    """Queue `topic` about `order` in the session's transaction; relayed after it commits."""
    from backend.market.services import market_id_of  # services call this module

    session.add(OutboxMessage(
        chain_id=settings.chain_id, block_number=0, topic=topic, created_at=utc_now(),
        payload={"order_hash": order.order_hash, "market_id": market_id_of(order.product, order.asset_id, order.delivery_start),
                 "side": "buy" if order.side == eip712.BUY else "sell", "price": order.price},
    ))
    if settings.redis_url and "outbox_settings" not in session.info:
        session.info["outbox_settings"] = settings
        event.listen(session, "after_commit", _relay, once=True)


@lru_cache(maxsize=4)
def _sink(redis_url: str, stream: str) -> RedisStreamSink:
    return RedisStreamSink(redis_url, stream=stream)


def _relay(session: Session) -> None:
    settings = session.info.pop("outbox_settings")
    try:
        OutboxPublisher(session.get_bind().engine, _sink(settings.redis_url, settings.outbox_stream)).publish_pending()
    except (redis.RedisError, SQLAlchemyError) as exc:  # committed rows wait for the next relay
        log.warning("outbox relay after commit failed: %s", exc)

"""Tells an API worker that market data changed somewhere else.

The outbox is the change feed: the indexer appends a message for every mirrored event (and
the API for every order it stores), so a new outbox message means cached public reads may
be stale. With Redis the worker blocks on the outbox stream (XREAD); without it, it tails
the outbox table (backend/api/outbox_tail.py: late commits of lower ids are seen too).
Outages are waited out — meanwhile the read cache's TTL still bounds staleness.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import anyio
import redis.asyncio as aioredis
from sqlalchemy.orm import Session

from backend.api.outbox_tail import OutboxTail, stream_batches
from backend.core.config import Settings
from backend.core.db import make_engine

log = logging.getLogger("gridledger.api")


async def watch_outbox(
    settings: Settings, on_change: Callable[[], None], poll_s: float = 0.25
) -> None:
    """Call `on_change` after each batch of new outbox messages, until cancelled."""
    watch = _watch_stream if settings.redis_url else _watch_table
    delay = poll_s
    while True:
        try:
            await watch(settings, on_change, poll_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("change feed unavailable (%s); retrying in %.1f s", exc, delay)
            on_change()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _watch_stream(settings: Settings, on_change: Callable[[], None], poll_s: float) -> None:
    client = aioredis.from_url(settings.redis_url)
    try:
        async for _ in stream_batches(client, settings.outbox_stream, block_ms=1_000, count=1_000):
            on_change()
    finally:
        await client.aclose()


async def _watch_table(settings: Settings, on_change: Callable[[], None], poll_s: float) -> None:
    engine = make_engine(settings.database_url)

    def start() -> OutboxTail:
        with Session(engine) as session:
            return OutboxTail.at_end(session)

    def read(tail: OutboxTail) -> bool:
        with Session(engine) as session:
            return bool(tail.read(session, limit=1_000))

    try:
        tail = await anyio.to_thread.run_sync(start)
        while True:
            await asyncio.sleep(poll_s)
            if await anyio.to_thread.run_sync(read, tail):
                on_change()
    finally:
        engine.dispose()

"""Identical reads in flight share one statement, never answering a request from a read that
began before it arrived (used by the order-book and trades paths, `orderbook_share_reads`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any


class SharedReads:
    """At most one read per key running. A caller joins the read that has not begun yet (its
    statement will start after the caller arrived), else starts the one that begins when the
    running read ends: never an answer from a read older than the request."""

    def __init__(self) -> None:
        self.running: dict[Hashable, asyncio.Future[Any]] = {}
        self.waiting: dict[Hashable, asyncio.Future[Any]] = {}

    async def run(self, key: Hashable, read: Callable[[], Awaitable[Any]]) -> Any:
        task = self.waiting.get(key)
        if task is None:
            task = self.waiting[key] = asyncio.ensure_future(
                self._round(key, self.running.get(key), read)
            )
            task.add_done_callback(_retrieve)
        # shield: a caller that goes away does not cancel the others' read
        return await asyncio.shield(task)

    async def _round(
        self, key: Hashable, before: asyncio.Future[Any] | None, read: Callable[[], Awaitable[Any]]
    ) -> Any:
        if before is not None:
            await asyncio.wait([before])
        this = self.running[key] = self.waiting.pop(key)  # begins: later callers wait for the next
        try:
            return await read()
        finally:
            if self.running.get(key) is this:
                del self.running[key]


def _retrieve(done: asyncio.Future[Any]) -> None:
    """Marks a round's exception retrieved (its callers re-raise it; all may have gone)."""
    if not done.cancelled():
        done.exception()

"""Public market reads (order book, trades, markets, prices, dashboard aggregates) served
from memory.

These responses are the same for every caller and change only when the market does, yet
they are by far the most requested. Each API worker keeps the last response per
(path, query string) and serves it until one of these happens:

- the market changed: a write (POST/PUT/DELETE) under `/v1/` completed in this worker, or
  the outbox feed (indexer commits, orders placed in other workers) reported a change —
  `invalidate()` is called by backend/api/change_feed.py;
- it is older than `public_cache_ttl_s` (bounds what depends on the clock alone: orders
  expiring, gate closure — the order book already reads chain time at most 1 s old).

Concurrent misses of one key wait for a single computation; when only the TTL ran out, the
others get the previous answer meanwhile instead of waiting. Only 200 responses are kept,
bounded in total bytes (oldest dropped first). Responses carry an ETag; `If-None-Match`
gets a 304. Only anonymous routes may be listed: the key ignores credentials.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from backend.api.asgi import ResponseCapture, StatusWatch, send_body

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class CachedResponse:
    generation: int
    stored_at: float
    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: bytes


class ReadCache:
    """The entries of one worker and the generation that invalidates them."""

    def __init__(
        self, paths: Iterable[str], *, ttl_s: float = 1.0, max_bytes: int = 64 * 2**20
    ) -> None:
        self.paths = frozenset(paths)
        self.ttl_s = ttl_s  # 0: off
        self.max_bytes = max_bytes
        self.generation = 0
        self.entries: dict[tuple[str, bytes], CachedResponse] = {}
        self.size = 0
        self.inflight: dict[tuple[str, bytes], asyncio.Future[CachedResponse | None]] = {}
        self.hits = self.misses = 0

    def invalidate(self) -> None:
        self.generation += 1
        self.entries.clear()
        self.size = 0

    def current(self, key: tuple[str, bytes]) -> CachedResponse | None:
        """The entry of this generation, however old."""
        entry = self.entries.get(key)
        return entry if entry is not None and entry.generation == self.generation else None

    def fresh(self, key: tuple[str, bytes], ttl_s: float) -> CachedResponse | None:
        """The entry of this generation, younger than `ttl_s`."""
        entry = self.current(key)
        return entry if entry is not None and time.monotonic() - entry.stored_at < ttl_s else None

    def store(self, key: tuple[str, bytes], entry: CachedResponse) -> None:
        if entry.generation != self.generation or len(entry.body) > self.max_bytes:
            return  # the market changed while it was computed
        old = self.entries.pop(key, None)
        if old is not None:
            self.size -= len(old.body)
        while self.entries and self.size + len(entry.body) > self.max_bytes:
            self.size -= len(self.entries.pop(next(iter(self.entries))).body)
        self.entries[key] = entry
        self.size += len(entry.body)


class ReadCacheMiddleware:
    """Pure ASGI: a hit never reaches routing, dependencies or the database."""

    def __init__(self, app: ASGIApp, cache: ReadCache) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        method, path = scope["method"], scope["path"]
        if method in WRITE_METHODS:
            return await self._write(scope, receive, send)
        if method != "GET" or path not in self.cache.paths:
            return await self.app(scope, receive, send)
        ttl_s = self.cache.ttl_s
        if ttl_s <= 0:
            return await self.app(scope, receive, send)
        key = (path, scope["query_string"])
        entry = self.cache.fresh(key, ttl_s)
        if entry is None:
            leader = self.cache.inflight.get(key)
            if leader is None:
                return await self._compute(key, scope, receive, send)
            # Only the clock moved: the old answer while it refreshes.
            entry = self.cache.current(key)
            if entry is None:  # the market changed: wait for the answer being computed
                entry = await asyncio.shield(leader)
                if entry is None:  # the leader's response was not cacheable: compute our own
                    return await self.app(scope, receive, send)
        self.cache.hits += 1
        scope["gridledger.cache"] = "hit"
        await self._reply(entry, scope, send, ttl_s)

    async def _write(self, scope: Scope, receive: Receive, send: Send) -> None:
        watch = StatusWatch(send)
        try:
            await self.app(scope, receive, watch)
        finally:
            if watch.status < 400 and scope["path"].startswith("/v1/"):
                self.cache.invalidate()

    async def _compute(
        self, key: tuple[str, bytes], scope: Scope, receive: Receive, send: Send
    ) -> None:
        self.cache.misses += 1
        scope["gridledger.cache"] = "miss"
        future: asyncio.Future[CachedResponse | None] = asyncio.get_running_loop().create_future()
        self.cache.inflight[key] = future
        generation = self.cache.generation
        response = ResponseCapture()
        entry = None
        try:
            await self.app(scope, receive, response)
            if response.status == 200:
                body = response.body
                etag = b'"' + hashlib.blake2b(body, digest_size=12).hexdigest().encode() + b'"'
                entry = CachedResponse(generation, time.monotonic(), response.headers(), body, etag)
                self.cache.store(key, entry)
        finally:
            del self.cache.inflight[key]
            future.set_result(entry)
        if entry is not None:
            await self._reply(entry, scope, send, self.cache.ttl_s)
        elif response.start is not None:
            await send_body(send, response.status, response.headers(), response.body)

    @staticmethod
    async def _reply(entry: CachedResponse, scope: Scope, send: Send, ttl_s: float) -> None:
        cache_headers = [
            (b"etag", entry.etag),
            (b"cache-control", b"public, max-age=%d" % max(1, int(ttl_s))),
        ]
        if _if_none_match(scope) == entry.etag:
            await send({"type": "http.response.start", "status": 304, "headers": cache_headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await send_body(send, 200, entry.headers + cache_headers, entry.body)


def _if_none_match(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            return value.strip()
    return None

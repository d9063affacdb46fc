"""Short-lived keys for rate limits and idempotency: Redis when configured, else in-process.

`make run` works without any server (embedded defaults), so a process-local store stands
in for Redis there; with GRIDLEDGER_REDIS_URL set, every API process shares Redis.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Protocol

import redis
import redis.asyncio as aioredis

from backend.core.config import Settings
from backend.core.errors import ServiceUnavailable


class KeyValueStore(Protocol):
    def incr_window(self, key: str, ttl_s: int) -> int: ...
    def set_if_absent(self, key: str, value: str, ttl_s: int) -> bool: ...
    def get(self, key: str) -> str | None: ...
    def put(self, key: str, value: str, ttl_s: int) -> None: ...
    def delete(self, key: str) -> None: ...
    def ping(self) -> None: ...


class RedisStore:
    def __init__(self, url: str):
        self.client = redis.Redis.from_url(
            url, socket_timeout=2, socket_connect_timeout=2, decode_responses=True
        )

    def _call(self, operation: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a Redis command; an unreachable Redis becomes ServiceUnavailable. (redis-py
        types a sync client's replies as `Awaitable | Any`, hence Any.)"""
        try:
            return operation(*args, **kwargs)
        except redis.RedisError as exc:
            raise ServiceUnavailable(f"Redis unavailable: {exc}", dependency="redis") from exc

    def incr_window(self, key: str, ttl_s: int) -> int:
        pipe = self.client.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, ttl_s)
        return int(self._call(pipe.execute)[0])

    def set_if_absent(self, key: str, value: str, ttl_s: int) -> bool:
        return bool(self._call(self.client.set, key, value, nx=True, ex=ttl_s))

    def get(self, key: str) -> str | None:
        return self._call(self.client.get, key)

    def put(self, key: str, value: str, ttl_s: int) -> None:
        self._call(self.client.set, key, value, ex=ttl_s)

    def delete(self, key: str) -> None:
        self._call(self.client.delete, key)

    def ping(self) -> None:
        self._call(self.client.ping)


class MemoryStore:
    """A dict with expiry, guarded by a lock: correct for one API process."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def _live(self, key: str) -> str | None:
        item = self._items.get(key)
        if item is None or item[1] <= time.monotonic():
            self._items.pop(key, None)
            return None
        return item[0]

    def incr_window(self, key: str, ttl_s: int) -> int:
        with self._lock:
            count = int(self._live(key) or 0) + 1
            self._items[key] = (str(count), time.monotonic() + ttl_s)
            return count

    def set_if_absent(self, key: str, value: str, ttl_s: int) -> bool:
        with self._lock:
            if self._live(key) is not None:
                return False
            self._items[key] = (value, time.monotonic() + ttl_s)
            return True

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._live(key)

    def put(self, key: str, value: str, ttl_s: int) -> None:
        with self._lock:
            self._items[key] = (value, time.monotonic() + ttl_s)

    def delete(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def ping(self) -> None:
        return None


_MEMORY = MemoryStore()


@lru_cache(maxsize=8)
def _redis_store(url: str) -> RedisStore:
    return RedisStore(url)


def store_for(settings: Settings) -> KeyValueStore:
    return _redis_store(settings.redis_url) if settings.redis_url else _MEMORY


# One asyncio Redis client per (event loop, URL): a client's connections belong to the loop
# that opened them (each uvicorn worker has one loop; a test client opens one per app).
_ASYNC_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, aioredis.Redis]] = (
    weakref.WeakKeyDictionary()
)


def _async_redis(url: str) -> aioredis.Redis:
    clients = _ASYNC_CLIENTS.setdefault(asyncio.get_running_loop(), {})
    client = clients.get(url)
    if client is None:
        client = clients[url] = aioredis.Redis.from_url(
            url, socket_timeout=2, socket_connect_timeout=2, decode_responses=True
        )
    return client


async def incr_window_async(settings: Settings, key: str, ttl_s: int, by: int = 1) -> int:
    """`KeyValueStore.incr_window` for async routes: the same key in the same store, without
    a worker thread (the in-process store answers at once). `by`: count that many at once
    (the count after the last of them comes back)."""
    if not settings.redis_url:
        count = 0
        for _ in range(by):
            count = _MEMORY.incr_window(key, ttl_s)
        return count
    try:
        async with _async_redis(settings.redis_url).pipeline(transaction=False) as pipe:
            pipe.incrby(key, by)
            pipe.expire(key, ttl_s)
            replies = await pipe.execute()
    except redis.RedisError as exc:
        raise ServiceUnavailable(f"Redis unavailable: {exc}", dependency="redis") from exc
    return int(replies[0])

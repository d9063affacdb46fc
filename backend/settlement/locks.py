"""Named locks with expiry: Redis when a Redis URL is configured, files under the data dir
otherwise (the embedded `make run` needs no server). A lock held by a killed process
expires (Redis: key TTL; files: the kernel drops the flock with the process)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

import redis
from redis.exceptions import LockError

from backend.core.config import Settings


class Locks(Protocol):
    def hold(self, name: str, timeout_s: float, wait_s: float = 0) -> AbstractContextManager[bool]:
        """Hold lock `name` (expiring after `timeout_s`), waiting up to `wait_s` for it; yields
        whether it was acquired."""
        ...


class RedisLocks:
    def __init__(self, client: redis.Redis, prefix: str = "gridledger:lock:") -> None:
        self.client = client
        self.prefix = prefix

    @contextmanager
    def hold(self, name: str, timeout_s: float, wait_s: float = 0) -> Iterator[bool]:
        lock = self.client.lock(
            self.prefix + name,
            timeout=timeout_s,
            blocking=wait_s > 0,
            blocking_timeout=wait_s or None,
        )
        acquired = lock.acquire()
        try:
            yield acquired
        finally:
            if acquired:
                # expired meanwhile: someone else may hold it now; nothing to undo
                with contextlib.suppress(LockError):
                    lock.release()


class FileLocks:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def hold(self, name: str, timeout_s: float, wait_s: float = 0) -> Iterator[bool]:
        path = self.directory / (name.replace(":", "_").replace("/", "_") + ".lock")
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        deadline = time.monotonic() + wait_s
        acquired = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    acquired = True
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        break
                    time.sleep(0.05)
            yield acquired
        finally:
            if acquired:
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def locks_from_settings(settings: Settings) -> Locks:
    broker = settings.resolved_broker_url
    if broker.startswith("redis"):
        return RedisLocks(
            redis.Redis.from_url(
                settings.redis_url if "redis_url" in settings.model_fields_set else broker
            )
        )
    return FileLocks(settings.data_dir / "locks")

"""Named locks with expiry: Redis when a Redis URL is configured, files under the data dir
otherwise (the embedded `make run` needs no server). A lock is held for as long as its
holder lives and works, however long that is (a settlement run waits for receipts); a lock
held by a killed process expires (Redis: the key's TTL, which a living holder keeps
renewing; files: the kernel drops the flock with the process)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

import redis
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from backend.core.config import Settings

log = logging.getLogger("gridledger.locks")


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
            thread_local=False,  # the token is renewed from another thread (`renewed`)
        )
        acquired = lock.acquire()
        if not acquired:
            yield False
            return
        try:
            with renewed(lock, every_s=timeout_s / 3):
                yield True
        finally:
            # lost meanwhile (Redis restarted): someone else may hold it now; nothing to undo
            with contextlib.suppress(LockError, RedisError):
                lock.release()


@contextmanager
def renewed(lock: Lock, *, every_s: float) -> Iterator[None]:
    """Keep resetting `lock`'s TTL while the body runs, so that it only expires when its
    holder dies (the TTL bounds how long a killed worker blocks the others, not how long a
    living one may work)."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(every_s):
            try:
                lock.reacquire()
            except LockError as exc:  # expired (or Redis restarted): another may hold it now
                log.warning("lock %s lost while held: %s", lock.name, exc)
                return
            except RedisError as exc:  # unreachable for now: try again on the next tick
                log.warning("lock %s not renewed: %s", lock.name, exc)

    thread = threading.Thread(target=renew, name=f"renew {lock.name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(every_s)


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


SETTLER_KEY = "settler-key"  # energy and DR settlement sign with one key: one nonce sequence
ISSUER_KEY = "issuer-key"


def hold_signing_key(locks: Locks, key: str, settings: Settings) -> AbstractContextManager[bool]:
    """Hold the lock of chain signing key `key` (SETTLER_KEY, ISSUER_KEY), so that one sender
    at a time uses its nonces; waits as long as a living holder may keep it before giving up
    (yields False: the caller reports busy and the next run retries)."""
    timeout_s = settings.settlement_lock_timeout_s
    return locks.hold(key, timeout_s, wait_s=timeout_s)


def locks_from_settings(settings: Settings) -> Locks:
    broker = settings.resolved_broker_url
    if broker.startswith("redis"):
        return RedisLocks(
            redis.Redis.from_url(
                settings.redis_url if "redis_url" in settings.model_fields_set else broker
            )
        )
    return FileLocks(settings.data_dir / "locks")

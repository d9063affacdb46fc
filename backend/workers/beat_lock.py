"""The beat's leader lock: only its holder schedules, so two beats (two hosts running
workers) never send the same work twice.

Redis when a Redis URL is configured (a key with a TTL that the holder renews: a killed
holder frees it within the TTL); a PostgreSQL session advisory lock otherwise (freed when the
holder's connection drops); a file lock for the embedded SQLite set-up (one host).
`renew` answers whether the lock is still ours; a holder that lost it must stop scheduling.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from pathlib import Path
from typing import Protocol

import redis
from redis.exceptions import LockError, RedisError
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from backend.core.config import Settings

LOCK_NAME = "gridledger:lock:beat"
ADVISORY_CLASS = 0x6742_4154  # "gBAT"; with the schema's hash: one beat per set of books


class BeatLock(Protocol):
    def acquire(self) -> bool: ...
    def renew(self) -> bool: ...
    def release(self) -> None: ...


class RedisBeatLock:
    def __init__(self, url: str, ttl_s: float) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        # thread_local=False: the token is renewed from the keeper thread
        self.lock = self.client.lock(LOCK_NAME, timeout=ttl_s, thread_local=False)
        self.token = f"{os.getpid()}:{uuid.uuid4().hex}"  # who holds it, for operators

    def acquire(self) -> bool:
        try:
            return bool(self.lock.acquire(blocking=False, token=self.token))
        except RedisError:
            return False

    def renew(self) -> bool:
        try:
            self.lock.reacquire()  # resets the TTL if the key still holds our token
            return True
        except LockError:
            return False  # expired and maybe taken: someone else may be scheduling
        except RedisError:
            return True  # unreachable for now: the TTL decides; the next renewal tells

    def release(self) -> None:
        with contextlib.suppress(LockError, RedisError):
            self.lock.release()


class PostgresBeatLock:
    """`pg_try_advisory_lock` on a connection of its own, held for the process's life; keyed
    by the schema, since advisory locks are database-wide and each schema has its own books."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.connection: Connection | None = None

    def acquire(self) -> bool:
        try:
            connection = self.engine.connect()
            held = connection.execute(
                text("SELECT pg_try_advisory_lock(:class, hashtext(current_schema()))"),
                {"class": ADVISORY_CLASS},
            ).scalar()
            connection.commit()
        except SQLAlchemyError:  # the database is away: not ours; try again later
            return False
        if held:
            self.connection = connection
            return True
        connection.close()
        return False

    def renew(self) -> bool:
        if self.connection is None:
            return False
        try:
            self.connection.execute(text("SELECT 1")).scalar()
            self.connection.commit()
            return True
        except SQLAlchemyError:  # the session is gone, and its advisory lock with it
            return False

    def release(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                self.connection.close()
            self.connection = None


class FileBeatLock:
    """flock on a file under the data dir: one host only (the embedded `make run`)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)

    def acquire(self) -> bool:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def renew(self) -> bool:
        return True  # the kernel holds it until we exit

    def release(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)


def beat_lock(settings: Settings, engine: Engine) -> BeatLock:
    if settings.redis_url:
        return RedisBeatLock(settings.redis_url, settings.beat_lock_ttl_s)
    if not settings.is_sqlite:
        return PostgresBeatLock(engine)
    return FileBeatLock(settings.data_dir / "locks" / "beat.lock")

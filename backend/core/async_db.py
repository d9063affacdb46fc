"""The async read path: one async engine per database URL, and `Reads`, what an async route
runs its SELECTs through.

PostgreSQL (`postgresql+psycopg://`) gets an SQLAlchemy async engine over psycopg 3's own
async connections (no extra driver; psycopg prepares a statement on the server after its
fifth use on a connection). The event loop never waits on a worker thread for these reads.

SQLite (the embedded default of `make run`) has no async driver installed here (aiosqlite is
not in our pins): `async_engine_for` answers None and routes read through `SyncReads`, the
same statements on a sync `Session` in the thread pool — what every route did before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import Executable, Row
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from backend.core.config import Settings


@lru_cache(maxsize=8)
def async_engine_for(database_url: str) -> AsyncEngine | None:
    """The process's async engine for `database_url`; None where no async driver serves it
    (SQLite: read through `SyncReads`)."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql" or url.get_driver_name() != "psycopg":
        return None
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=False)


def async_engine(settings: Settings) -> AsyncEngine | None:
    return async_engine_for(settings.database_url)


class Reads(Protocol):
    """Runs one read-only statement and returns its rows."""

    async def all(
        self, statement: Executable, params: Mapping[str, Any] | None = None
    ) -> Sequence[Row[Any]]: ...


class AsyncReads:
    """Each statement on a pooled async connection, returned to the pool at once."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def all(
        self, statement: Executable, params: Mapping[str, Any] | None = None
    ) -> Sequence[Row[Any]]:
        async with self.engine.connect() as connection:
            result = await connection.execute(statement, dict(params or {}))
            return result.all()


class SyncReads:
    """The same statements on a sync session, in the thread pool (SQLite; tests that run the
    app inside a rolled-back transaction)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    async def all(
        self, statement: Executable, params: Mapping[str, Any] | None = None
    ) -> Sequence[Row[Any]]:
        def run() -> Sequence[Row[Any]]:
            return self.session.execute(statement, dict(params or {})).all()

        return await run_in_threadpool(run)

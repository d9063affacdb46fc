"""The async read path: `Query` (a statement written once with named bind parameters) and
`Reads`, what an async route runs its queries through.

PostgreSQL (`postgresql+psycopg://`): `AsyncReads` runs each query's SQL, compiled once per
process, on a small pool of psycopg 3 async connections in autocommit (no BEGIN/ROLLBACK
round trips; psycopg prepares a statement on the server after its fifth use on a
connection, planned for each execution's parameters unless `Query.generic_plan` says one plan
fits every value). Measured on the 2-core machine:
SQLAlchemy's async engine over the same driver answered ~900 statements/s under 64
concurrent tasks, raw psycopg async ~7,000/s: the engine's greenlet hand-offs, pool
bookkeeping and per-statement transaction cost the difference. The event loop never waits on
a worker thread for these reads.

SQLite (the embedded default of `make run`) has no async driver in our pins (aiosqlite is
not installed): `async_pool` answers None and routes read through `SyncReads`, the same
statements on a sync `Session` in the thread pool — what every route did before. Tests that
run the app inside a rolled-back transaction read through `SyncReads` too.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar, cast

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import ClauseElement, Executable
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import make_url
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from backend.core.config import Settings

_DIALECT = PGDialect_psycopg()
T = TypeVar("T")


class Query:
    """A read-only statement with named `bindparam`s, compiled to PostgreSQL SQL on first use.
    Literal values in the statement (bound by SQLAlchemy as anonymous parameters) are kept.

    `generic_plan`: the statement's best plan does not depend on its parameters' values (a
    lookup by a unique key; an index that fits every value, such as my orders by
    `(account_id, seq)`), so PostgreSQL may plan it once per connection (`AsyncPool`). The
    others are planned for each execution's parameters."""

    def __init__(self, statement: Executable, *, generic_plan: bool = False) -> None:
        self.statement = statement
        self.generic_plan = generic_plan
        self._compiled: tuple[str, dict[str, Any]] | None = None

    def postgres(self) -> tuple[str, dict[str, Any]]:
        """(SQL text in psycopg's `%(name)s` style, the literal parameters' values)."""
        if self._compiled is None:
            compiled = cast(ClauseElement, self.statement).compile(dialect=_DIALECT)
            self._compiled = (compiled.string, dict(compiled.params))
        return self._compiled


class Reads(Protocol):
    """Runs one `Query` and returns its rows: tuples that also have the columns as attributes
    and `_asdict()`."""

    async def all(self, query: Query, params: Mapping[str, Any] | None = None) -> Sequence[Any]: ...


# A connection's plan cache mode (`Query.generic_plan`). Prepared statements save the parse,
# but a generic plan ignores the parameters: "my orders, newest first, LIMIT n" without an index
# that fits walked the seq index backwards past every other account's orders. So a statement is
# planned for each execution's parameters unless it is known to have one plan for all; those
# run on connections in PostgreSQL's default mode, which settles on the generic plan (measured
# on the private-read bench's data: an API key lookup 0.13 -> 0.05 ms of PostgreSQL CPU, my
# orders 0.53 -> 0.37 ms).
_PLAN_CACHE_MODE = {
    False: "SET plan_cache_mode = force_custom_plan",
    True: "SET plan_cache_mode = auto",
}


class AsyncPool:
    """Autocommit psycopg async connections of one event loop, opened on demand up to `size`;
    a connection that failed is closed, not reused. Each connection is in one plan cache mode
    (`Query.generic_plan`); an idle connection of the other mode is switched rather than a
    new one opened, so at most `size` are open."""

    def __init__(self, conninfo: str, size: int) -> None:
        self.conninfo = conninfo
        self.idle: list[psycopg.AsyncConnection[Any]] = []
        self.generic: dict[psycopg.AsyncConnection[Any], bool] = {}  # by connection: its mode
        self.slots = asyncio.Semaphore(size)

    async def fetch(
        self, sql: str, params: Mapping[str, Any], *, generic: bool = False
    ) -> list[Any]:
        async with self.slots:
            connection = await self._take(generic)
            try:
                cursor = await connection.execute(sql, params)
                rows = await cursor.fetchall()
            except BaseException:
                self.generic.pop(connection, None)
                await connection.close()
                raise
            self.idle.append(connection)
            return rows

    def close(self) -> None:
        """Close the idle connections at once (no await: their loop may be closed already)."""
        while self.idle:
            connection = self.idle.pop()
            self.generic.pop(connection, None)
            connection.pgconn.finish()

    async def _take(self, generic: bool) -> psycopg.AsyncConnection[Any]:
        """An idle connection in the `generic` mode, else an idle one switched to it, else a new
        one."""
        for at in range(len(self.idle) - 1, -1, -1):
            if self.generic.get(self.idle[at]) is generic:
                return self.idle.pop(at)
        if not self.idle:
            connection = await psycopg.AsyncConnection.connect(
                self.conninfo, autocommit=True, row_factory=namedtuple_row
            )
        else:
            connection = self.idle.pop()
        try:
            await connection.execute(_PLAN_CACHE_MODE[generic])
        except BaseException:
            self.generic.pop(connection, None)
            await connection.close()
            raise
        self.generic[connection] = generic
        return connection


# One pool per (event loop, database URL): a connection belongs to the loop that opened it.
_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, AsyncPool]] = (
    weakref.WeakKeyDictionary()
)


def close_pools() -> None:
    """Close the pools of the running event loop (the app's shutdown) and of loops closed
    since: a pool's connections otherwise stay open until the collector finds it (a test
    client without lifespan runs each request on a loop of its own)."""
    _close_pools(also=asyncio.get_running_loop())


def _close_pools(*, also: asyncio.AbstractEventLoop | None = None) -> None:
    """Close and forget the pools of closed event loops, and of `also`."""
    for loop in [loop for loop in _POOLS if loop is also or loop.is_closed()]:
        for pool in _POOLS.pop(loop).values():
            pool.close()


def libpq_conninfo(database_url: str) -> str | None:
    """The libpq URI of a `postgresql+psycopg://` URL (options such as the search path kept);
    None for any other database."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql" or url.get_driver_name() != "psycopg":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def async_pool(settings: Settings) -> AsyncPool | None:
    """This event loop's pool for `settings.database_url`; None where no async driver serves
    it (SQLite: read through `SyncReads`). A new pool first closes those of closed loops, and a
    pool is closed when its loop is collected."""

    def make(conninfo: str) -> AsyncPool:
        _close_pools()
        pool = AsyncPool(conninfo, settings.async_read_pool_size)
        weakref.finalize(asyncio.get_running_loop(), pool.close)  # a loop collected unclosed
        return pool

    return loop_local(_POOLS, settings, make)


def loop_local(
    registry: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, T]],
    settings: Settings,
    make: Callable[[str], T],
) -> T | None:
    """The running event loop's object for `settings.database_url` in `registry`, made by
    `make(libpq conninfo)` on first use (a connection belongs to the loop that opened it); None
    where no async driver serves the URL."""
    loop = asyncio.get_running_loop()
    objects = registry.get(loop)
    if objects is None:  # not setdefault: that builds a weak reference on every call
        objects = registry[loop] = {}
    found = objects.get(settings.database_url)
    if found is None:
        conninfo = libpq_conninfo(settings.database_url)
        if conninfo is None:
            return None
        found = objects[settings.database_url] = make(conninfo)
    return found


class AsyncReads:
    def __init__(self, pool: AsyncPool) -> None:
        self.pool = pool

    async def all(self, query: Query, params: Mapping[str, Any] | None = None) -> Sequence[Any]:
        sql, literals = query.postgres()
        return await self.pool.fetch(
            sql, {**literals, **(params or {})}, generic=query.generic_plan
        )


class SyncReads:
    """The same queries on a sync session, in the thread pool, one at a time (a session is not
    shared between threads: a route may gather several reads)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.lock = asyncio.Lock()

    async def all(self, query: Query, params: Mapping[str, Any] | None = None) -> Sequence[Any]:
        def run() -> Sequence[Any]:
            return self.session.execute(query.statement, dict(params or {})).all()

        async with self.lock:
            return await run_in_threadpool(run)

"""Database engine and sessions. The URL comes from settings; SQLite and PostgreSQL both work."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Table, event, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session, SQLModel, create_engine

from backend.core.config import get_settings


def make_engine(database_url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout for concurrent use.

    Every table model is registered first: a flush sorts tables by their foreign keys, and a
    process that imported only some models (the matcher has no use for `accounts`) would fail
    on the first write that touches a table referring to one it never imported.
    """
    from backend.models import load_all_models  # the models import this module's helpers

    load_all_models()
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        # pool_size + max_overflow >= the API's worker threads (anyio default 40): a sync route
        # holding a thread must never wait for a connection held by a thread that waits too.
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=30)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


_engine: Engine | None = None


def get_engine() -> Engine:
    """The process's engine for the configured database, created on first use."""
    global _engine
    if _engine is None:
        _engine = make_engine(get_settings().database_url)
    return _engine


def get_session() -> Iterator[Session]:
    with Session(get_engine()) as session:
        yield session


def table_of(model: type[SQLModel]) -> Table:
    """The Core `Table` behind a table model, for Core statements (bulk inserts, updates).

    SQLModel sets `Model.__table__` at class creation but does not declare it to type
    checkers; the mapper knows the same table.
    """
    table = inspect(model).local_table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table

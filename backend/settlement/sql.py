"""SQL the settlement workers share across PostgreSQL and SQLite."""

from __future__ import annotations

from sqlalchemy import inspect
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import Insert
from sqlmodel import Session, SQLModel


def insert_ignoring_conflicts(
    session: Session, model: type[SQLModel], conflict_columns: list[str]
) -> Insert:
    """INSERT into `model`'s table ... ON CONFLICT (`conflict_columns`) DO NOTHING, in the
    dialect of the session's database: a row already stored is kept, not an error."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return insert(inspect(model).local_table).on_conflict_do_nothing(
        index_elements=conflict_columns
    )

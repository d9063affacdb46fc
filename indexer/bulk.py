"""Bulk inserts: COPY on PostgreSQL (with a staging table when duplicates must be ignored),
executemany elsewhere. The backfill's hot path; everything else uses plain statements."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

import orjson
import psycopg
from psycopg.errors import UniqueViolation
from sqlalchemy import JSON, Executable, Table, insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection


def dumps_json(value: Any) -> str | None:
    """JSON text for a JSON column; orjson, falling back for integers beyond 64 bits."""
    if value is None:
        return None
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def bulk_insert(
    connection: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    conflict_columns: list[str] | None = None,
) -> None:
    """Insert `rows`; with `conflict_columns`, rows clashing on that unique key are skipped."""
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        statement: Executable
        if conflict_columns:
            statement = sqlite_insert(table).on_conflict_do_nothing(index_elements=conflict_columns)
        else:
            statement = insert(table)
        connection.execute(statement, rows)
        return
    columns = list(rows[0])
    column_list = ", ".join(f'"{c}"' for c in columns)
    pick: Callable[[dict[str, Any]], Sequence[Any]] = (
        itemgetter(*columns) if len(columns) > 1 else (lambda row: (row[columns[0]],))
    )
    json_positions = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, JSON)]
    records: list[Sequence[Any]]
    if json_positions:
        records = []
        for row in rows:
            record = list(pick(row))
            for i in json_positions:
                record[i] = dumps_json(record[i])
            records.append(record)
    else:
        records = [pick(row) for row in rows]
    driver = connection.connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise TypeError(f"PostgreSQL bulk inserts need psycopg 3, not {type(driver).__name__}")
    if not conflict_columns:
        _copy(driver, table.name, column_list, records)
        return
    # Fast path: COPY straight in; only if that hits a duplicate, go through a staging table.
    try:
        with driver.transaction():  # a savepoint inside the caller's transaction
            _copy(driver, table.name, column_list, records)
    except UniqueViolation:
        staging = f"_staging_{table.name}"
        cursor = driver.cursor()
        cursor.execute(
            f'CREATE TEMP TABLE IF NOT EXISTS "{staging}" AS '
            f'SELECT {column_list} FROM "{table.name}" WITH NO DATA'
        )
        _copy(driver, staging, column_list, records)
        keys = ", ".join(f'"{c}"' for c in conflict_columns)
        cursor.execute(
            f'INSERT INTO "{table.name}" ({column_list}) SELECT {column_list} FROM "{staging}" '
            f"ON CONFLICT ({keys}) DO NOTHING"
        )
        cursor.execute(f'TRUNCATE "{staging}"')


def _copy(
    driver: psycopg.Connection[Any], target: str, column_list: str, records: list[Sequence[Any]]
) -> None:
    with driver.cursor().copy(f'COPY "{target}" ({column_list}) FROM STDIN') as copy:
        for record in records:
            copy.write_row(record)

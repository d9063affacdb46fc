"""Bulk inserts: COPY on PostgreSQL (binary where the column types allow; with a staging
table when duplicates must be ignored), executemany elsewhere. The backfill's hot path;
everything else uses plain statements."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import cache
from operator import itemgetter
from typing import Any

import orjson
import psycopg
from psycopg import adapt, postgres, pq
from psycopg._copy_base import format_row_binary
from psycopg.errors import UniqueViolation
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Enum,
    Executable,
    Integer,
    SmallInteger,
    String,
    Table,
    insert,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel.sql.sqltypes import AutoString


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
        statement: Executable = (
            sqlite_insert(table).on_conflict_do_nothing(index_elements=conflict_columns)
            if conflict_columns
            else insert(table)
        )
        connection.execute(statement, rows)
        return
    if conflict_columns:
        insert_new(connection, table, rows, conflict_columns)
        return
    columns, records = _records(table, rows)
    _copy(
        _driver(connection),
        table.name,
        _column_list(columns),
        records,
        binary_types(table, columns),
    )


def copy_records(
    connection: Connection,
    table: Table,
    columns: list[str],
    records: Sequence[Sequence[Any]],
) -> None:
    """Insert rows given as records of `columns` (no conflict handling): a COPY on
    PostgreSQL, binary where the types allow; elsewhere an executemany of dicts."""
    if not records:
        return
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), _rows_of(table, columns, records))
        return
    _copy(
        _driver(connection),
        table.name,
        _column_list(columns),
        records,
        binary_types(table, columns),
    )


def insert_new(
    connection: Connection, table: Table, rows: list[dict[str, Any]], key: list[str]
) -> list[bool]:
    """Insert the rows whose `key` (the columns of a unique constraint) is not stored yet;
    returns, row by row, whether it went in (of rows sharing a new key, the first did).
    PostgreSQL: COPY straight in; only if that hits a duplicate, COPY into a staging table and
    `INSERT ... ON CONFLICT DO NOTHING RETURNING` the key. Elsewhere a row at a time."""
    if not rows:
        return []
    if connection.dialect.name != "postgresql":
        statement = sqlite_insert(table).on_conflict_do_nothing(index_elements=key)
        return [connection.execute(statement, row).rowcount == 1 for row in rows]
    columns, records = _records(table, rows)
    return insert_records(connection, table, columns, records, key=key)


def insert_records(
    connection: Connection,
    table: Table,
    columns: list[str],
    records: Sequence[Sequence[Any]],
    *,
    key: list[str],
) -> list[bool]:
    """`insert_new` of rows given as COPY records of `columns` (JSON columns as JSON text)."""
    if not records:
        return []
    if connection.dialect.name != "postgresql":
        return insert_new(connection, table, _rows_of(table, columns, records), key)
    column_list = _column_list(columns)
    driver = _driver(connection)
    types = binary_types(table, columns)
    new = _copy_skipping_stored(
        driver,
        table.name,
        column_list,
        key,
        lambda target: _copy(driver, target, column_list, records, types),
    )
    if new is None:
        return [True] * len(records)
    positions = [columns.index(c) for c in key]
    inserted: list[bool] = []
    for record in records:
        record_key = tuple(record[p] for p in positions)
        inserted.append(record_key in new)
        new.discard(record_key)  # a second row with the same key was not the one stored
    return inserted


def insert_copy(
    connection: Connection, table: Table, columns: list[str], payload: bytes, *, key: list[str]
) -> None:
    """`insert_records` of rows given as one whole binary COPY of `columns` (`BinaryCopy`),
    PostgreSQL only: straight in, or through the staging table when one is stored already."""
    column_list = _column_list(columns)
    driver = _driver(connection)
    _copy_skipping_stored(
        driver,
        table.name,
        column_list,
        key,
        lambda target: _copy_payload(driver, target, column_list, payload),
    )


def _copy_skipping_stored(
    driver: psycopg.Connection[Any],
    table_name: str,
    column_list: str,
    key: list[str],
    copy: Callable[[str], None],
) -> set[tuple[Any, ...]] | None:
    """`copy(table)` straight in; if a row's `key` is stored already, `copy` into a staging
    table instead and insert from it what is new. Returns None when the first COPY took every
    row, else the keys inserted."""
    try:
        with driver.transaction():  # a savepoint inside the caller's transaction
            copy(table_name)
        return None
    except UniqueViolation:
        pass
    staging = f"_staging_{table_name}"
    cursor = driver.cursor()
    cursor.execute(
        f'CREATE TEMP TABLE IF NOT EXISTS "{staging}" AS '
        f'SELECT {column_list} FROM "{table_name}" WITH NO DATA'
    )
    copy(staging)
    keys = _column_list(key)
    cursor.execute(
        f'INSERT INTO "{table_name}" ({column_list}) SELECT {column_list} FROM "{staging}" '
        f"ON CONFLICT ({keys}) DO NOTHING RETURNING {keys}"
    )
    new = {tuple(found) for found in cursor.fetchall()}
    cursor.execute(f'TRUNCATE "{staging}"')
    return new


def _copy_payload(
    driver: psycopg.Connection[Any], target: str, column_list: str, payload: bytes
) -> None:
    with driver.cursor().copy(
        f'COPY "{target}" ({column_list}) FROM STDIN (FORMAT BINARY)'
    ) as copy:
        copy.write(payload)


_BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # header: flags and extension length
_BINARY_TRAILER = b"\xff\xff"


class BinaryCopy:
    """Encodes records as a whole PostgreSQL binary COPY (header, rows, trailer) with no
    connection, so another process can prepare what the writer's COPY sends as it is.
    `types`: PostgreSQL built-in type names of the columns (`binary_types`)."""

    def __init__(self, types: list[str]):
        self._transformer = adapt.Transformer()
        oids = [postgres.types.get_oid(name) for name in types]
        self._transformer.set_dumper_types(oids, pq.Format.BINARY)

    def encode(self, records: Sequence[Sequence[Any]]) -> bytes:
        """Raises TypeError, ValueError or OverflowError for a value the types cannot take."""
        buffer = bytearray(_BINARY_SIGNATURE)
        for record in records:
            format_row_binary(record, self._transformer, buffer)
        buffer += _BINARY_TRAILER
        return bytes(buffer)


def _rows_of(
    table: Table, columns: list[str], records: Sequence[Sequence[Any]]
) -> list[dict[str, Any]]:
    """Rows for the statement path from COPY records: JSON text back to values (a JSON column
    serialises what it is given, so the text would be stored as a JSON string)."""
    json_columns = {c for c in columns if isinstance(table.c[c].type, JSON)}
    rows = [dict(zip(columns, record, strict=True)) for record in records]
    for row in rows:
        for column in json_columns:
            if row[column] is not None:
                row[column] = json.loads(row[column])
    return rows


def _column_list(columns: list[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _driver(connection: Connection) -> psycopg.Connection[Any]:
    driver = connection.connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise TypeError(f"PostgreSQL bulk inserts need psycopg 3, not {type(driver).__name__}")
    return driver


def _records(table: Table, rows: list[dict[str, Any]]) -> tuple[list[str], list[Sequence[Any]]]:
    """The rows' columns and their values as COPY records (JSON columns as JSON text)."""
    columns = list(rows[0])
    pick: Callable[[dict[str, Any]], Sequence[Any]] = (
        itemgetter(*columns) if len(columns) > 1 else (lambda row: (row[columns[0]],))
    )
    json_positions = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, JSON)]
    if not json_positions:
        return columns, [pick(row) for row in rows]
    records: list[Sequence[Any]] = []
    for row in rows:
        record = list(pick(row))
        for i in json_positions:
            record[i] = dumps_json(record[i])
        records.append(record)
    return columns, records


# SQLAlchemy column types whose PostgreSQL binary COPY form psycopg writes from the Python
# values the indexer holds; JSON goes as its text (json's binary form is the text; jsonb's
# is not). Subclasses first: BigInteger is an Integer, JSONB a JSON.
_BINARY_TYPES: tuple[tuple[type[TypeEngine[Any]], str | None], ...] = (
    (JSONB, None),
    (JSON, "text"),
    (BigInteger, "int8"),
    (SmallInteger, "int2"),
    (Integer, "int4"),
    (Boolean, "bool"),
    (Enum, None),
    (TypeDecorator, None),  # its own binding (UUIDs, ...): left to the text form
    (String, "text"),
)


@cache
def _binary_types_of(table: Table, columns: tuple[str, ...]) -> list[str] | None:
    types = []
    for column in columns:
        kind = table.c[column].type
        if isinstance(kind, AutoString):  # sqlmodel's plain str column
            kind = kind.impl_instance
        name = next((n for t, n in _BINARY_TYPES if isinstance(kind, t)), None)
        if name is None:
            return None
        types.append(name)
    return types


def binary_types(table: Table, columns: list[str]) -> list[str] | None:
    """Type names for a binary COPY of `columns`, or None when one has a type it cannot take
    (timestamps, jsonb, ...): that COPY stays text."""
    return _binary_types_of(table, tuple(columns))


def _copy(
    driver: psycopg.Connection[Any],
    target: str,
    column_list: str,
    records: Sequence[Sequence[Any]],
    binary_types: list[str] | None = None,
) -> None:
    """COPY the records in, binary when `binary_types` are given: about twice as fast as
    text for the server and the client. A value the binary form cannot take (a str in an
    integer column, an integer beyond 64 bits) falls back to a text COPY, which stores or
    rejects it as before."""
    if binary_types:
        try:
            with driver.transaction():  # a savepoint: a failed COPY leaves nothing
                _copy_rows(driver, target, column_list, records, binary_types)
            return
        except (TypeError, ValueError, OverflowError):
            pass
    _copy_rows(driver, target, column_list, records, None)


def _copy_rows(
    driver: psycopg.Connection[Any],
    target: str,
    column_list: str,
    records: Sequence[Sequence[Any]],
    binary_types: list[str] | None,
) -> None:
    options = " (FORMAT BINARY)" if binary_types else ""
    with driver.cursor().copy(f'COPY "{target}" ({column_list}) FROM STDIN{options}') as copy:
        if binary_types:
            copy.set_types(binary_types)
        for record in records:
            copy.write_row(record)

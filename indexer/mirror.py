"""A unit of work over the derived tables: load rows by key, change them in memory, flush.

Handlers never talk SQL. They `get`/`put`/`insert` plain dict rows; `flush` writes the
changes in bulk (one statement per table and kind) and, for blocks that a reorg may still
replace, records each changed row's before-image in `undo_log` so `reorg.rewind` can
restore it exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from backend.core.db import table_of
from backend.core.utc import utc_now
from indexer.bulk import bulk_insert
from indexer.models import OutboxMessage, UndoEntry

Row = dict[str, Any]  # a derived-table row: column name → value
Key = tuple[Any, ...]  # a row's primary key values, in the table's key order
TableKey = tuple[str, Key]  # (table name, key): a row a handler will read


def table(name: str) -> Table:
    return SQLModel.metadata.tables[name]


@cache
def primary_key_names(name: str) -> tuple[str, ...]:
    return tuple(c.name for c in table(name).primary_key.columns)


@cache
def _key_getter(name: str) -> Callable[[Mapping[str, Any]], Key]:
    """A row's primary key as a tuple (itemgetter: the hot path of every insert)."""
    names = primary_key_names(name)
    if len(names) == 1:
        (only,) = names
        return lambda row: (row[only],)
    return cast(Callable[[Mapping[str, Any]], Key], itemgetter(*names))


@cache
def _row_shape(model: type[SQLModel]) -> tuple[Row, frozenset[str], int]:
    """A table model's (defaults of the optional columns, names of the required ones,
    number of columns)."""
    defaults = {
        name: field.default
        for name, field in model.model_fields.items()
        if not field.is_required() and field.default_factory is None
    }
    return defaults, frozenset(model.model_fields) - defaults.keys(), len(model.model_fields)


def new_row(model: type[SQLModel], **values: Any) -> Row:
    """A whole row of `model`'s table: `values`, and the model's defaults for the rest.

    Every column is present, as bulk inserts need; a missing required column or an unknown
    one raises TypeError here rather than deep inside the flush.
    """
    defaults, required, width = _row_shape(model)
    row = {**defaults, **values}
    if len(row) != width or not values.keys() >= required:
        missing = sorted(required - values.keys())
        unknown = sorted(row.keys() - model.model_fields.keys())
        raise TypeError(f"{model.__name__} row: missing {missing}, unknown {unknown}")
    return row


class MirrorState:
    def __init__(self, connection: Connection, chain_id: int):
        self.connection = connection
        self.chain_id = chain_id
        self._current: dict[str, dict[Key, Row | None]] = defaultdict(dict)
        self._original: dict[str, dict[Key, Row | None]] = defaultdict(dict)
        self._dirty: dict[str, dict[Key, None]] = defaultdict(dict)  # ordered set
        self._outbox: list[Row] = []
        self._collecting: dict[tuple[str, str], Row] = {}

    # ------------------------------------------------------------------ reads

    def key_of(self, name: str, row: Mapping[str, Any]) -> Key:
        return _key_getter(name)(row)

    def prefetch(self, wanted: dict[str, set[Key]]) -> None:
        """Load many rows per table in one query each; absent keys are remembered as None."""
        for name, keys in wanted.items():
            missing = [k for k in keys if k not in self._current[name]]
            if not missing:
                continue
            t = table(name)
            pk_cols = [t.c[c] for c in primary_key_names(name)]
            for chunk_start in range(0, len(missing), 5_000):
                chunk = missing[chunk_start : chunk_start + 5_000]
                # Select on the first key column only (cheap to plan), keep the wanted rows.
                wanted_keys = set(chunk)
                condition = pk_cols[0].in_({k[0] for k in chunk})
                for found in self.connection.execute(select(t).where(condition)).mappings():
                    row = dict(found)
                    if self.key_of(name, row) in wanted_keys:
                        self._remember(name, row)
            for key in missing:
                if key not in self._current[name]:
                    self._current[name][key] = None
                    self._original[name][key] = None

    def _remember(self, name: str, row: Row) -> None:
        key = self.key_of(name, row)
        self._current[name][key] = row
        self._original[name][key] = dict(row)

    def get(self, name: str, *key: Any) -> Row | None:
        if key not in self._current[name]:
            self.prefetch({name: {key}})
        return self._current[name][key]

    def copy_of(self, name: str, *key: Any) -> Row:
        """A copy of a row that must exist (to change and `put` back)."""
        row = self.get(name, *key)
        if row is None:
            raise LookupError(f"{name} has no row {key}")
        return dict(row)

    # ----------------------------------------------------------------- writes

    def put(self, name: str, row: Row) -> None:
        """Insert or replace a row (the caller passes the whole row)."""
        key = self.key_of(name, row)
        if key not in self._current[name]:
            self.prefetch({name: {key}})
        self._current[name][key] = row
        self._dirty[name][key] = None

    def insert(self, name: str, row: Row) -> None:
        """A row known to be new (a fact keyed by its log); skips the existence query."""
        key = self.key_of(name, row)
        self._original[name].setdefault(key, None)
        self._current[name][key] = row
        self._dirty[name][key] = None

    def emit(
        self, block_number: int, topic: str, payload: dict[str, Any], collect: str | None = None
    ) -> None:
        """Queue an outbox message. With `collect`, messages of one topic and transaction are
        merged: their `collect` lists are concatenated (one message per issuance batch)."""
        if collect is not None:
            group = (topic, payload["tx_hash"])
            pending = self._collecting.get(group)
            if pending is not None:
                pending["payload"][collect].extend(payload[collect])
                return
        message = {
            "chain_id": self.chain_id,
            "block_number": block_number,
            "topic": topic,
            "payload": payload,
            "created_at": utc_now(),
            "published_at": None,
        }
        if collect is not None:
            self._collecting[group] = message
        self._outbox.append(message)

    def flush(self, undo_block: int | None) -> int:
        """Write every change; with `undo_block`, log before-images under that block number.

        Returns the number of rows written. The state stays usable: flushed rows become
        the new originals.
        """
        written = 0
        undo_rows: list[Row] = []
        for name, keys in self._dirty.items():
            t = table(name)
            pk_names = primary_key_names(name)
            inserts: list[Row] = []
            updates: list[Row] = []
            deletes: list[Key] = []
            for key in keys:
                before, after = self._original[name].get(key), self._current[name][key]
                if before == after:
                    continue
                if undo_block is not None:
                    undo_rows.append(
                        {
                            "chain_id": self.chain_id,
                            "block_number": undo_block,
                            "table_name": name,
                            "key": dict(zip(pk_names, key, strict=True)),
                            "before": before,
                        }
                    )
                if before is None and after is not None:
                    inserts.append(after)
                elif after is None:
                    deletes.append(key)
                else:
                    updates.append(
                        {**after, **{f"pk_{c}": v for c, v in zip(pk_names, key, strict=True)}}
                    )
                self._original[name][key] = None if after is None else dict(after)
            bulk_insert(self.connection, t, inserts)
            if updates:
                condition = and_(*(t.c[c] == bindparam(f"pk_{c}") for c in pk_names))
                self.connection.execute(update(t).where(condition), updates)
            if deletes:
                condition = or_(
                    *(
                        and_(*(t.c[c] == v for c, v in zip(pk_names, k, strict=True)))
                        for k in deletes
                    )
                )
                self.connection.execute(delete(t).where(condition))
            written += len(inserts) + len(updates) + len(deletes)
        bulk_insert(self.connection, table_of(UndoEntry), undo_rows)
        bulk_insert(self.connection, table_of(OutboxMessage), self._outbox)
        self._outbox = []
        self._collecting = {}
        self._dirty.clear()
        return written


def restore_rows(connection: Connection, entries: Iterable[Mapping[Any, Any]]) -> None:
    """Put rows back as undo entries (table_name, key, before) recorded them, newest first."""
    for entry in entries:
        t = table(entry["table_name"])
        condition = and_(*(t.c[c] == v for c, v in entry["key"].items()))
        connection.execute(delete(t).where(condition))
        if entry["before"] is not None:
            connection.execute(insert(t), [entry["before"]])

"""A unit of work over the derived tables: load rows by key, change them in memory, flush.

Handlers never talk SQL. They `get`/`put`/`insert` plain dict rows, or `Record`s (immutable
tuples in the table's column order, for the facts a backfill inserts by the thousand: they
go to the COPY as they are); `flush` writes the changes in bulk (one statement per table and
kind) and, for blocks that a reorg may still replace, records each changed row's before-image
in `undo_log` so `reorg.rewind` can restore it exactly.
"""

from __future__ import annotations

import keyword
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar, Self, cast

from sqlalchemy import JSON, Table, and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from backend.core.db import table_of
from backend.core.utc import utc_now
from indexer.bulk import bulk_insert, copy_records
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


class Record(tuple[Any, ...]):
    """A whole row of one table as a tuple in its column order: built by keyword (missing or
    unknown columns raise TypeError, as `new_row` does), COPYed without a dict in between.
    Subclasses come from `record_type`."""

    __slots__ = ()
    table_name: ClassVar[str]
    columns: ClassVar[tuple[str, ...]]

    if TYPE_CHECKING:  # set by `record_type`: the constructor (columns by keyword), the key

        def __new__(cls, **values: Any) -> Self: ...

        @staticmethod
        def key_of(record: tuple[Any, ...]) -> Key: ...

    def as_row(self) -> Row:
        return dict(zip(self.columns, self, strict=True))


@cache
def record_type(model: type[SQLModel]) -> type[Record]:
    """The `Record` class of `model`'s table: keyword-only fields, the model's defaults.
    Tables with JSON columns have none (their COPY wants JSON text, handlers give values)."""
    t = table_of(model)
    columns = tuple(c.name for c in t.columns)
    if any(isinstance(c.type, JSON) for c in t.columns):
        raise TypeError(f"{model.__name__} has JSON columns: use dict rows")
    defaults, required, _ = _row_shape(model)
    if set(columns) != set(model.model_fields) or not all(
        c.isidentifier() and not keyword.iskeyword(c) for c in columns
    ):
        raise TypeError(f"{model.__name__}: columns {columns} are not its field names")
    params = ", ".join(c if c in required else f"{c}=_defaults[{c!r}]" for c in columns)
    namespace: dict[str, Any] = {"_defaults": defaults, "_tuple_new": tuple.__new__}
    # a generated constructor: keyword binding and defaults checked by the interpreter itself
    exec(  # the source names identifier-checked columns only
        f"def __new__(_cls, *, {params}):\n    return _tuple_new(_cls, ({', '.join(columns)},))",
        namespace,
    )
    positions = [columns.index(c) for c in primary_key_names(t.name)]
    key_of: Callable[[tuple[Any, ...]], Key] = (
        (lambda record: (record[positions[0]],))
        if len(positions) == 1
        else cast(Callable[[tuple[Any, ...]], Key], itemgetter(*positions))
    )
    cls = type(
        f"{model.__name__}Record",
        (Record,),
        {
            "__slots__": (),
            "__new__": namespace["__new__"],
            "table_name": t.name,
            "columns": columns,
            "key_of": staticmethod(key_of),
        },
    )
    _RECORD_TYPES[t.name] = cls
    return cls


_RECORD_TYPES: dict[str, type[Record]] = {}  # table name → its Record class, once made


def as_row(value: Row | Record) -> Row:
    """A dict of the row (a new one for a Record; the dict itself otherwise)."""
    return value.as_row() if isinstance(value, Record) else value


class MirrorState:
    def __init__(
        self,
        connection: Connection,
        chain_id: int,
        contracts: Mapping[str, str] | None = None,
        before_read: Callable[[], None] | None = None,
    ):
        self.connection = connection
        # called before a query: the backfill's writes in flight on the connection finish
        self._before_read = before_read
        self.chain_id = chain_id
        # our contracts: lower-case address → name (handlers that must know an address is ours)
        self.contracts: Mapping[str, str] = contracts or {}
        # what a handler leaves for a later log of the same transaction (a unit of work holds
        # whole blocks, so a transaction's logs are never split between two of them)
        self.notes: dict[Any, Any] = {}
        self._current: dict[str, dict[Key, Row | Record | None]] = defaultdict(dict)
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
            if self._before_read is not None:
                self._before_read()
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
        """The row (a Record comes back as a new dict: handlers build on dicts)."""
        if key not in self._current[name]:
            self.prefetch({name: {key}})
        row = self._current[name][key]
        return row.as_row() if isinstance(row, Record) else row

    def copy_of(self, name: str, *key: Any) -> Row:
        """A copy of a row that must exist (to change and `put` back)."""
        row = self.get(name, *key)
        if row is None:
            raise LookupError(f"{name} has no row {key}")
        return dict(row)

    # ----------------------------------------------------------------- writes

    def _key(self, name: str, row: Row | Record) -> Key:
        if isinstance(row, Record):
            if row.table_name != name:
                raise TypeError(f"a {type(row).__name__} is not a row of {name}")
            return row.key_of(row)
        return self.key_of(name, row)

    def put(self, name: str, row: Row | Record) -> None:
        """Insert or replace a row (the caller passes the whole row)."""
        key = self._key(name, row)
        if key not in self._current[name]:
            self.prefetch({name: {key}})
        self._current[name][key] = row
        self._dirty[name][key] = None

    def insert(self, name: str, row: Row | Record) -> None:
        """A row known to be new (a fact keyed by its log); skips the existence query."""
        key = self._key(name, row)
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

    def flush(self, undo_block: int | None, *, keep: bool = True) -> int:
        """Write every change; with `undo_block`, log before-images under that block number.

        Returns the number of rows written. With `keep` the state stays usable (flushed rows
        become the new originals); without, the caller drops it (a backfill batch), which
        saves a copy of every row.
        """
        written = 0
        undo_rows: list[Row] = []
        for name, keys in self._dirty.items():
            t = table(name)
            pk_names = primary_key_names(name)
            originals, current = self._original[name], self._current[name]
            inserts: list[Row | Record] = []
            updates: list[Row] = []
            deletes: list[Key] = []
            for key in keys:
                before, after = originals.get(key), current[key]
                if before is None:
                    if after is None:
                        continue
                    inserts.append(after)
                elif after is None:
                    deletes.append(key)
                else:
                    after_row = as_row(after)
                    if before == after_row:
                        continue
                    updates.append(
                        {**after_row, **{f"pk_{c}": v for c, v in zip(pk_names, key, strict=True)}}
                    )
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
                if keep:
                    originals[key] = None if after is None else dict(as_row(after))
            self._insert(t, inserts)
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

    def _insert(self, t: Table, rows: list[Row | Record]) -> None:
        """New rows in bulk: a table with a Record type as COPY records in its column order
        (dict rows picked into that order), any other as dicts."""
        if not rows:
            return
        kind = _RECORD_TYPES.get(t.name)
        if kind is None:
            bulk_insert(self.connection, t, [as_row(row) for row in rows])
            return
        pick = itemgetter(*kind.columns)
        records = [row if isinstance(row, Record) else pick(row) for row in rows]
        copy_records(self.connection, t, list(kind.columns), records)


def restore_rows(connection: Connection, entries: Iterable[Mapping[Any, Any]]) -> None:
    """Put rows back as undo entries (table_name, key, before) recorded them, newest first."""
    for entry in entries:
        t = table(entry["table_name"])
        condition = and_(*(t.c[c] == v for c, v in entry["key"].items()))
        connection.execute(delete(t).where(condition))
        if entry["before"] is not None:
            connection.execute(insert(t), [entry["before"]])

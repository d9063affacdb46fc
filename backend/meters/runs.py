"""Readings of new intervals go into `reading_runs` (PostgreSQL) by one binary COPY of runs.

A run is one meter's consecutive 15-minute intervals within one UTC day: one table row whose
reading fields are arrays (migration i16_reading_runs; `meter_readings` is the view that
unnests them). A batch is sorted by meter and interval and cut into runs with numpy; each
column's elements are encoded once for the whole batch and every run's array is a slice.

Intervals stay unique per meter: the writer first takes the advisory locks of the batch's
(meter, day) pairs (`LOCK`, in key order, as the triggers and the merge do), then COPYs in a
savepoint. If one of the batch's intervals is already stored, the exclusion constraint refuses
the COPY, the savepoint is rolled back and the caller merges the batch instead (duplicates,
corrections); a batch repeating an interval is merged too. A batch the COPY stored is exactly
what the merge would have done: every reading new, accepted, revision 0.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg.errors import ExclusionViolation, UniqueViolation
from sqlalchemy import literal_column
from sqlalchemy.engine import Connection
from sqlmodel import Session

from backend.meters.batch import Columns
from backend.meters.copy_in import HEADER, PG_EPOCH, TRAILER
from backend.meters.models import INTERVAL_SECONDS

DAY = 86_400
SLOTS = DAY // INTERVAL_SECONDS
COPY_RUNS = (
    "COPY reading_runs (meter_id, day, first_slot, slots, import_wh, export_wh, voltage_v, "
    "current_a, power_factor, quality, revision, source, verified, signature, signer, "
    "received_at) FROM STDIN (FORMAT BINARY)"
)
# the locks of (meter, day) pairs in key order (the triggers use reading_runs_lock: same key)
LOCK = (
    "SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT DISTINCT "
    "hashtextextended(m || ':' || d::text, 0) AS k FROM unnest(%s::text[], %s::int8[]) "
    "AS t(m, d) ORDER BY k) AS keys"
)
INT8, FLOAT8, INT4 = ">i8", ">f8", ">i4"
OIDS = {INT8: 20, FLOAT8: 701, INT4: 23, "?": 16, "S": 25, "T": 1184}
# (column, element type): "S" text, "T" timestamptz; the table's column order
ARRAYS: tuple[tuple[str, str], ...] = (
    ("import_wh", INT8),
    ("export_wh", INT8),
    ("voltage_v", FLOAT8),
    ("current_a", FLOAT8),
    ("power_factor", FLOAT8),
    ("quality", "S"),
    ("revision", INT4),
    ("source", "S"),
    ("verified", "?"),
    ("signature", "S"),
    ("signer", "S"),
    ("received_at", "T"),
)
NULL_FIELD = struct.pack(">i", -1)
STRUCTS = {INT8: ">q", FLOAT8: ">d", INT4: ">i", "?": "?"}  # numpy type -> struct format


class Runs:
    """A batch cut into runs: per run its meter, day, first slot and [start, end) positions
    in `order` (the batch's positions sorted by meter and interval)."""

    def __init__(self, rows: Columns) -> None:
        meters, codes = np.unique(np.array(rows.meter_id, dtype=object), return_inverse=True)
        starts = np.array(rows.interval_start, dtype=np.int64)
        order = np.lexsort((starts, codes))
        codes, starts = codes[order], starts[order]
        days = starts - starts % DAY
        slots = (starts - days) // INTERVAL_SECONDS
        same_meter = codes[1:] == codes[:-1]
        self.repeats = bool(np.any(same_meter & (starts[1:] == starts[:-1])))
        cut = ~same_meter | (days[1:] != days[:-1]) | (slots[1:] != slots[:-1] + 1)
        bounds = np.concatenate(([0], np.flatnonzero(cut) + 1, [len(order)]))
        first = bounds[:-1]
        self.order = order
        self.begin = first
        self.end = bounds[1:]
        self.meter_id: list[str] = meters[codes[first]].tolist()
        self.day: list[int] = days[first].tolist()
        self.first_slot: list[int] = slots[first].tolist()

    def __len__(self) -> int:
        return len(self.begin)

    def pairs(self) -> tuple[list[str], list[int]]:
        """The (meter, day) pairs the runs touch (repeated pairs are fine for LOCK)."""
        return self.meter_id, self.day


def encode(runs: Runs, rows: Columns, source: str, received_at: datetime) -> list[bytes]:
    """A binary COPY body of `runs` for COPY_RUNS.

    Per column, every element of the batch is encoded once (32-bit length, value) in run
    order; a run's array is a header plus a slice of that. A column NULL in every reading is
    a NULL array; a column with NULLs in some readings, or text of several lengths, is encoded
    element by element (rare: mixed batches)."""
    n = len(rows)
    order = runs.order
    received = (received_at - PG_EPOCH) // timedelta(microseconds=1)
    columns: list[tuple[bytes, int, int] | None] = []  # (element bytes, stride or 0, oid)
    offsets: list[np.ndarray | None] = []
    for name, kind in ARRAYS:
        if name == "revision":
            values: Sequence[Any] = [0] * n
        elif name == "source":
            values = [source] * n
        elif name == "received_at":
            values = [received] * n
        else:
            values = getattr(rows, name)
        encoded = _elements(values, kind, order)
        if encoded is None:
            columns.append(None)
            offsets.append(None)
            continue
        body, stride, ends = encoded
        columns.append((body, stride, OIDS[kind]))
        offsets.append(ends)
    parts = [HEADER]
    field_count = struct.pack(">h", 16)
    for run, (meter, day, slot) in enumerate(
        zip(runs.meter_id, runs.day, runs.first_slot, strict=True)
    ):
        begin, end = int(runs.begin[run]), int(runs.end[run])
        count = end - begin
        meter_bytes = meter.encode()
        parts.append(
            field_count
            + struct.pack(f">i{len(meter_bytes)}s", len(meter_bytes), meter_bytes)
            + struct.pack(">iqihih", 8, day, 2, slot, 2, count)
        )
        for column, ends in zip(columns, offsets, strict=True):
            if column is None:
                parts.append(NULL_FIELD)
                continue
            body, stride, oid = column
            if stride:
                chunk = body[begin * stride : end * stride]
            else:
                assert ends is not None
                chunk = body[ends[begin] : ends[end]]
            parts.append(struct.pack(">iiiIii", 20 + len(chunk), 1, 1, oid, count, 1) + chunk)
    parts.append(TRAILER)
    return parts


def _elements(
    values: Sequence[Any], kind: str, order: np.ndarray
) -> tuple[bytes, int, np.ndarray | None] | None:
    """The column's elements in `order` as one byte string: (bytes, fixed stride or 0, byte
    offsets of each element when not fixed: n + 1 of them); None when every value is NULL.
    The array header's has-null flag is always set (valid whether or not NULLs occur)."""
    n = len(values)
    nulls = values.count(None) if isinstance(values, list) else 0
    if nulls == n and n:
        return None
    if kind == "T":
        kind = INT8
    if nulls == 0 and kind != "S":
        block = np.empty(n, dtype=[("len", ">i4"), ("value", kind)])
        block["len"] = np.dtype(kind).itemsize
        block["value"] = np.asarray(values)[order] if n else []
        return block.tobytes(), block.dtype.itemsize, None
    if nulls == 0:
        encoded = [v.encode() for v in values]
        lengths = set(map(len, encoded))
        if len(lengths) == 1:
            size = lengths.pop()
            block = np.empty(n, dtype=[("len", ">i4"), ("value", f"S{size}")])
            block["len"] = size
            block["value"] = np.array(encoded, dtype=f"S{size}")[order]
            return block.tobytes(), block.dtype.itemsize, None
    pieces: list[bytes] = []
    ends = np.zeros(n + 1, dtype=np.int64)
    pack = struct.Struct(">i").pack
    fixed = None if kind == "S" else struct.Struct(STRUCTS[kind])
    for at, position in enumerate(order.tolist()):
        value = values[position]
        if value is None:
            piece = NULL_FIELD
        elif fixed is None:
            raw = value.encode()
            piece = pack(len(raw)) + raw
        else:
            piece = pack(fixed.size) + fixed.pack(value)
        pieces.append(piece)
        ends[at + 1] = ends[at] + len(piece)
    return b"".join(pieces), 0, ends


def lock(driver: psycopg.Connection, meters: list[str], days: list[int]) -> None:
    """Take the advisory transaction locks of these (meter, day) pairs, in key order."""
    driver.execute(LOCK, (meters, days))


def copy_runs(connection: Connection, rows: Columns, source: str, received_at: datetime) -> bool:
    """COPY `rows` into `reading_runs` as runs; False (nothing stored) when one of their
    intervals is stored already or repeated in the batch, or on another database than
    PostgreSQL. The (meter, day) locks stay held either way. Caller commits."""
    driver = connection.connection.driver_connection
    if not rows or not isinstance(driver, psycopg.Connection):
        return False
    runs = Runs(rows)
    if runs.repeats:
        return False
    lock(driver, *runs.pairs())
    parts = encode(runs, rows, source, received_at)
    try:
        with driver.transaction(), driver.cursor().copy(COPY_RUNS) as copy:
            for part in parts:
                copy.write(part)
    except (ExclusionViolation, UniqueViolation):
        return False
    return True


def lock_rows(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """`lock` the (meter, day) pairs of validated rows (the merge's input), on PostgreSQL."""
    driver = connection.connection.driver_connection
    if not rows or not isinstance(driver, psycopg.Connection):
        return
    pairs = sorted({(r["meter_id"], r["interval_start"] // DAY * DAY) for r in rows})
    lock(driver, [m for m, _ in pairs], [d for _, d in pairs])


def day_bounds(session: Session | Connection, start: int, end: int) -> list[Any]:
    """Conditions on the `meter_readings` view's `day` for readings of [start, end): with
    them PostgreSQL unnests only the runs of those UTC days, not a meter's whole history (a
    filter on `interval_start` alone is applied after the unnest). None on SQLite (a table)."""
    bind = session.get_bind() if isinstance(session, Session) else session
    if bind.dialect.name != "postgresql":
        return []
    day: Any = literal_column("meter_readings.day")
    return [day >= start - start % DAY, day < end]

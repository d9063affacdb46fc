"""Readings of new intervals go into `reading_runs` (PostgreSQL) by one binary COPY of runs.

A run is one meter's consecutive 15-minute intervals within one UTC day: one table row whose
reading fields are arrays (migration i16_reading_runs; `meter_readings` is the view that
unnests them). A batch is sorted by meter and interval and cut into runs with numpy; each
column's elements are encoded once for the whole batch and every run's array is a slice.

Intervals stay unique per meter: every writer of `reading_runs` takes the advisory
transaction locks of its (meter, day) pairs (`LOCK`: the runs key shared, then the pairs in
key order; the view's triggers and the compaction take the same keys; a batch of more than
LOCK_PAIRS_MAX pairs takes the runs key exclusive instead) before it reads what is stored, so
the runs of a meter and day cannot overlap (migration i16_runs_locked_writes; an exclusion
constraint did this before at ~64 us of PostgreSQL CPU per inserted run, ten times the rest of
the insert). The COPY locks its pairs, checks that none of its runs overlaps a stored one
(`OVERLAPS`: one index probe per run) and COPYs; if one of the batch's intervals is already
stored, or the batch repeats an interval, it stores nothing and the caller merges the batch
instead (duplicates, corrections) under the locks it holds. A batch the COPY stored is exactly
what the merge would have done: every reading new, accepted, revision 0.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import psycopg
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
# the runs key shared, then the locks of (meter, day) pairs in key order (migration
# i16_runs_locked_writes; the triggers' reading_runs_lock takes the same keys)
LOCK = "SELECT reading_runs_lock_pairs(%s::text[], %s::int8[])"
# a batch of more pairs than this takes the runs key exclusive instead: PostgreSQL's shared lock
# table holds ~64 locks per connection, so one lock per pair would run it out of memory
LOCK_PAIRS_MAX = 1_000
LOCK_ALL = "SELECT pg_advisory_xact_lock(hashtextextended('reading_runs', 0))"
# how many of the runs (meter m, day d, slots [s, e)) overlap a stored run: the only stored
# run that can is the last one of the pair starting before e (stored runs never overlap)
OVERLAPS = (
    "SELECT count(*) FROM unnest(%s::text[], %s::int8[], %s::int4[], %s::int4[]) "
    "AS b(m, d, s, e) CROSS JOIN LATERAL (SELECT r.first_slot + r.slots AS stop "
    "FROM reading_runs r WHERE r.meter_id = b.m AND r.day = b.d AND r.first_slot < b.e "
    "ORDER BY r.first_slot DESC LIMIT 1) AS p WHERE p.stop > b.s"
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
# the columns of a reading as a row (the `meter_readings` view's, the row layout's before)
ROW_COLUMNS = ("meter_id", "interval_start", "interval_s", *(name for name, _ in ARRAYS))
NULL_FIELD = struct.pack(">i", -1)
STRUCTS = {INT8: ">q", FLOAT8: ">d", INT4: ">i", "?": "?"}  # numpy type -> struct format


class Runs:
    """A batch cut into runs: per run its meter, day, first slot and [start, end) positions
    in `order` (the batch's positions sorted by meter and interval)."""

    def __init__(self, rows: Columns) -> None:
        arrays = rows.key_arrays()
        if arrays is not None:  # the column checks' arrays: no list to convert
            codes, starts = arrays.meter_code, arrays.interval_start
        else:
            found: dict[str, int] = {}  # meter -> code, by first appearance (beats np.unique)
            codes = np.fromiter(
                (found.setdefault(m, len(found)) for m in rows.meter_id), np.int64, len(rows)
            )
            starts = np.array(rows.interval_start, dtype=np.int64)
        same = codes[1:] == codes[:-1]
        # the column checks give their rows in key order: then the order is the rows' own
        self.in_order = bool(np.all((codes[1:] > codes[:-1]) | same & (starts[1:] >= starts[:-1])))
        if self.in_order:
            order = np.arange(len(codes))
        else:
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
        self.meter_id: list[str] = [rows.meter_id[p] for p in order[first].tolist()]
        self.day: list[int] = days[first].tolist()
        self.first_slot: list[int] = slots[first].tolist()

    def __len__(self) -> int:
        return len(self.begin)

    def pairs(self) -> tuple[list[str], list[int]]:
        """The (meter, day) pairs the runs touch (repeated pairs are fine for LOCK)."""
        return self.meter_id, self.day


def encode(runs: Runs, rows: Columns, source: str, received_at: datetime) -> list[bytes]:
    """A binary COPY body of `runs` for COPY_RUNS (one part).

    Per column, every element of the batch is encoded once (32-bit length, value) in run
    order, and every run's array header at once; a run's array is its header plus a slice
    of the elements. A column NULL in every reading is a NULL array; a column with NULLs in
    some readings, or text of several lengths, is encoded element by element (mixed batches).
    """
    n, k = len(rows), len(runs)
    begin, end = runs.begin, runs.end
    counts = (end - begin).astype(np.int64)
    received = (received_at - PG_EPOCH) // timedelta(microseconds=1)
    arrays = rows.key_arrays()
    # per column: (headers of every run, elements, byte offset of every element + 1) or None
    columns: list[tuple[memoryview, memoryview, list[int]] | None] = []
    for name, kind in ARRAYS:
        encoded: tuple[bytes, int, np.ndarray | None] | None
        if name == "revision":
            encoded = _constant(0, kind, n)
        elif name == "source":
            encoded = _constant(source, kind, n)
        elif name == "received_at":
            encoded = _constant(received, kind, n)
        elif arrays is not None and name in ("import_wh", "export_wh"):
            encoded = _wh_elements(getattr(arrays, name), runs) or _elements(
                getattr(rows, name), kind, runs.order
            )
        else:
            encoded = _elements(getattr(rows, name), kind, runs.order)
        if encoded is None:
            columns.append(None)
            continue
        body, stride, ends = encoded
        if stride:
            starts = (np.arange(n + 1, dtype=np.int64) * stride)[np.append(begin, end[-1:])]
            sizes = counts * stride
        else:
            assert ends is not None
            starts = ends[np.append(begin, end[-1:])]
            sizes = ends[end] - ends[begin]
        headers = np.empty(
            k,
            dtype=[(f, ">i4") for f in ("len", "ndim", "flags")]
            + [("oid", ">u4"), ("dim", ">i4"), ("lbound", ">i4")],
        )
        headers["len"], headers["ndim"], headers["flags"] = 20 + sizes, 1, 1
        headers["oid"], headers["dim"], headers["lbound"] = OIDS[kind], counts, 1
        columns.append((memoryview(headers.tobytes()), memoryview(body), starts.tolist()))
    prefixes = [
        struct.pack(">hi", 16, len(meter))
        + meter
        + struct.pack(">iqihih", 8, day, 2, slot, 2, count)
        for meter, day, slot, count in zip(
            (m.encode() for m in runs.meter_id),
            runs.day,
            runs.first_slot,
            counts.tolist(),
            strict=True,
        )
    ]
    parts: list[bytes | memoryview] = [HEADER]
    for run in range(k):
        parts.append(prefixes[run])
        for column in columns:
            if column is None:
                parts.append(NULL_FIELD)
            else:
                head, elements, at = column
                parts.append(head[run * 24 : run * 24 + 24])
                parts.append(elements[at[run] : at[run + 1]])
    parts.append(TRAILER)
    return [b"".join(parts)]


def _constant(value: Any, kind: str, n: int) -> tuple[bytes, int, None]:
    """n copies of one value's element."""
    if kind == "S":
        raw = value.encode()
        dtype: Any = [("len", ">i4"), ("value", f"S{len(raw)}")]
        value = raw
    else:
        dtype = [("len", ">i4"), ("value", INT8 if kind == "T" else kind)]
    block = np.empty(n, dtype=dtype)
    block["len"] = block.dtype["value"].itemsize
    block["value"] = value
    return block.tobytes(), block.dtype.itemsize, None


def _wh_elements(values: np.ndarray, runs: Runs) -> tuple[bytes, int, None] | None:
    """`_elements` of a Wh column from the column checks' array (-1: absent), when no value
    is absent (else None: the list way)."""
    if values.size == 0 or int(values.min()) < 0:
        return None
    block = np.empty(len(values), dtype=[("len", ">i4"), ("value", INT8)])
    block["len"] = 8
    block["value"] = values if runs.in_order else values[runs.order]
    return block.tobytes(), block.dtype.itemsize, None


def _elements(
    values: list[Any], kind: str, order: np.ndarray
) -> tuple[bytes, int, np.ndarray | None] | None:
    """The column's elements in `order` as one byte string: (bytes, fixed stride or 0, byte
    offsets of each element when not fixed: n + 1 of them); None when every value is NULL.
    The array header's has-null flag is always set (valid whether or not NULLs occur)."""
    n = len(values)
    nulls = values.count(None)
    if nulls == n:
        return None
    if nulls == 0 and kind == "?" and (values.count(True) in (0, n)):
        return _constant(values[0], kind, n)  # one flag for all (verified or not)
    if nulls == 0 and kind != "S":
        block = np.empty(n, dtype=[("len", ">i4"), ("value", kind)])
        block["len"] = np.dtype(kind).itemsize
        block["value"] = np.asarray(values)[order]
        return block.tobytes(), block.dtype.itemsize, None
    if nulls == 0:
        if values.count(values[0]) == n:  # by identity first: cheap for one shared text
            return _constant(values[0], kind, n)
        text = np.array(values)
        lengths = np.char.str_len(text)
        if lengths.min() == lengths.max():
            try:
                fixed = text.astype(f"S{int(lengths[0])}")  # ASCII only (hex, quality codes)
            except UnicodeEncodeError:
                pass
            else:
                block = np.empty(n, dtype=[("len", ">i4"), ("value", fixed.dtype)])
                block["len"] = fixed.dtype.itemsize
                block["value"] = fixed[order]
                return block.tobytes(), block.dtype.itemsize, None
    pieces: list[bytes] = []
    ends = np.zeros(n + 1, dtype=np.int64)
    pack = struct.Struct(">i").pack
    fixed_format = None if kind == "S" else struct.Struct(STRUCTS[kind])
    for at, position in enumerate(order.tolist()):
        value = values[position]
        if value is None:
            piece = NULL_FIELD
        elif fixed_format is None:
            raw = value.encode()
            piece = pack(len(raw)) + raw
        else:
            piece = pack(fixed_format.size) + fixed_format.pack(value)
        pieces.append(piece)
        ends[at + 1] = ends[at] + len(piece)
    return b"".join(pieces), 0, ends


def lock(driver: psycopg.Connection, meters: list[str], days: list[int]) -> None:
    """Take the advisory transaction locks of these (meter, day) pairs, in key order, or of
    every pair at once for a batch of more than LOCK_PAIRS_MAX of them."""
    if len(meters) > LOCK_PAIRS_MAX and len(set(zip(meters, days, strict=True))) > LOCK_PAIRS_MAX:
        driver.execute(LOCK_ALL)
    else:
        driver.execute(LOCK, (meters, days))


def copy_runs(connection: Connection, rows: Columns, source: str, received_at: datetime) -> bool:
    """COPY `rows` into `reading_runs` as runs; False (nothing stored) when one of their
    intervals is stored already or repeated in the batch, or on another database than
    PostgreSQL. Takes the (meter, day) locks of the runs (held until the caller commits, so
    the merge that follows a False holds them already). Caller commits."""
    driver = connection.connection.driver_connection
    if not rows or not isinstance(driver, psycopg.Connection):
        return False
    runs = Runs(rows)
    if runs.repeats:
        return False
    parts = encode(runs, rows, source, received_at)  # before the locks: hold them briefly
    lock(driver, *runs.pairs())
    if overlapping(driver, runs):
        return False
    with driver.cursor().copy(COPY_RUNS) as copy:
        for part in parts:
            copy.write(part)
    return True


def overlapping(driver: psycopg.Connection, runs: Runs) -> int:
    """How many of `runs` overlap a stored run (exact only under their `lock`)."""
    ends = (np.asarray(runs.first_slot) + (runs.end - runs.begin)).tolist()
    found = driver.execute(OVERLAPS, (runs.meter_id, runs.day, runs.first_slot, ends)).fetchone()
    assert found is not None
    return int(found[0])


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

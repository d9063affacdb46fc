"""The row-per-reading binary COPY encoder of the storage layout used before the interval
runs (migration i16_reading_runs): one row per reading, keyed by meter and interval. The
product no longer writes that layout; the bench measures its raw limit
(`meter_ingest`'s `row_layout_limit_readings_per_s`) with this encoder. The PGCOPY framing is
the product's (backend/meters/copy_in.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import repeat
from typing import Any

import numpy as np

from backend.meters.batch import Columns
from backend.meters.copy_in import HEADER, PG_EPOCH, TRAILER, binary_rows
from backend.meters.models import INTERVAL_SECONDS
from backend.meters.runs import ARRAYS, FLOAT8, INT4, INT8, ROW_COLUMNS

# PostgreSQL type of each element type of runs.ARRAYS (psycopg's row writer takes the names)
TYPE_NAMES = {
    INT8: "int8",
    FLOAT8: "float8",
    INT4: "int4",
    "?": "bool",
    "S": "varchar",
    "T": "timestamptz",
}
COLUMNS = ", ".join(ROW_COLUMNS)
TYPES = ["varchar", "int8", "int4", *(TYPE_NAMES[kind] for _, kind in ARRAYS)]
METER_ID_LENGTH = 66
MAX_LAYOUTS = 3  # beyond, filling many small blocks costs more than psycopg's row writer


def copy_rows(table: str) -> str:
    """The binary COPY statement of the row layout's columns into `table`."""
    return f"COPY {table} ({COLUMNS}) FROM STDIN (FORMAT BINARY)"


CONSTANT = ("revision", "source", "received_at")  # one value for the whole batch
NULLABLE = tuple((name, kind) for name, kind in ARRAYS if name not in CONSTANT)


def encode(rows: Columns, source: str, received_at: datetime) -> list[bytes | memoryview] | None:
    """`rows` as the parts of a binary COPY body for `copy_rows(table)`, built by columns.

    Each row is a 16-bit field count, then per field a 32-bit length (-1: NULL) and the value
    in network byte order. Rows agreeing on which fields are NULL and on the length of their
    text values have one fixed layout: each such group is one numpy structured array, filled
    column by column (a batch is usually one group). None for a batch of more than
    MAX_LAYOUTS layouts, or with a meter id that is not bytes32 hex (psycopg then writes it
    row by row).
    """
    n = len(rows)
    if set(map(len, rows.meter_id)) != {METER_ID_LENGTH}:  # ids are bytes32 hex: never
        return None
    groups = _groups(rows, n)
    if len(groups) > MAX_LAYOUTS:
        return None
    source_bytes = source.encode()
    received = (received_at - PG_EPOCH) // timedelta(microseconds=1)
    meter_ids = np.array(rows.meter_id, dtype=f"S{METER_ID_LENGTH}")
    starts = np.array(rows.interval_start, dtype=np.int64)
    parts: list[bytes | memoryview] = [HEADER]
    for layout, at in groups:
        fields: list[tuple[str, str | None, Any]] = [  # (name, numpy type or None: NULL, values)
            ("meter_id", f"S{METER_ID_LENGTH}", meter_ids[at]),
            ("interval_start", INT8, starts[at]),
            ("interval_s", ">i4", INTERVAL_SECONDS),
        ]
        sizes = dict(zip((name for name, _ in NULLABLE), layout.tolist(), strict=True))
        constants = {
            "revision": (INT4, 0),
            "source": (f"S{len(source_bytes)}", source_bytes),
            "received_at": (INT8, received),
        }
        for name, dtype in ARRAYS:  # the table's column order
            if name in constants:
                fields.append((name, *constants[name]))
            elif (size := sizes[name]) < 0:
                fields.append((name, None, None))
            else:
                kind: str = f"S{size}" if dtype == "S" else dtype
                values = getattr(rows, name)
                if len(at) < n:
                    values = [values[i] for i in at.tolist()]
                fields.append((name, kind, np.array(values, kind)))
        parts.append(binary_rows(fields, len(at)))
    parts.append(TRAILER)
    return parts


def _groups(rows: Columns, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(layout: per nullable column the byte length of its value, -1 for NULL; positions)."""
    uniform: list[int] = []
    for name, dtype in NULLABLE:
        values = getattr(rows, name)
        nulls = values.count(None)
        if nulls == n:
            uniform.append(-1)
        elif nulls:
            break
        elif dtype != "S":
            uniform.append(np.dtype(dtype).itemsize)
        elif len(lengths := set(map(len, values))) == 1:
            uniform.append(lengths.pop())
        else:
            break
    else:  # the usual batch: one layout
        return [(np.array(uniform), np.arange(n))]
    sizes = np.empty((n, len(NULLABLE)), dtype=np.int64)
    for column, (name, dtype) in enumerate(NULLABLE):
        values = getattr(rows, name)
        width = -1 if dtype == "S" else np.dtype(dtype).itemsize
        sizes[:, column] = np.fromiter(
            (-1 if v is None else (len(v) if width < 0 else width) for v in values), np.int64, n
        )
    layouts, which = np.unique(sizes, axis=0, return_inverse=True)
    which = which.reshape(-1)
    return [(layout, np.flatnonzero(which == k)) for k, layout in enumerate(layouts)]


def records(rows: Columns, source: str, received_at: datetime) -> Iterator[tuple[Any, ...]]:
    """`rows` as tuples for psycopg's row writer (`copy.write_row`, types `TYPES`): what
    `encode` must equal."""
    n = len(rows)
    return zip(
        rows.meter_id,
        rows.interval_start,
        repeat(INTERVAL_SECONDS, n),
        rows.import_wh,
        rows.export_wh,
        rows.voltage_v,
        rows.current_a,
        rows.power_factor,
        rows.quality,
        repeat(0, n),
        repeat(source, n),
        rows.verified,
        rows.signature,
        rows.signer,
        repeat(received_at, n),
        strict=True,
    )

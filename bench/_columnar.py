"""A columnar layout of interval readings, prototyped for its raw COPY limit (not used by the
product): one row per meter, UTC day and batch, holding that batch's consecutive 15-minute
values of the meter as arrays, the way meter-data-management systems store interval data.

    meter_id, day (Unix s), first_slot (0..95), import_wh int8[], export_wh int8[],
    quality int2[] (code), verified bool[], revision int4, source, received_at
    primary key (meter_id, day, first_slot)

A batch's readings of one meter and day that are consecutive become one row, so a 10,000-
reading batch of 100 meters over ~1 day is ~200 rows instead of 10,000: one heap tuple and
one B-tree entry per ~50 readings. What the prototype leaves out (and a real switch would
need): the merge of a batch into a day row already partly stored (intervals unique per meter),
per-interval revisions and corrections, signatures.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np

TABLE = (
    "CREATE TABLE IF NOT EXISTS columnar_readings (meter_id varchar(66) NOT NULL, "
    "day bigint NOT NULL, first_slot int2 NOT NULL, import_wh int8[] NOT NULL, "
    "export_wh int8[] NOT NULL, quality int2[] NOT NULL, verified bool[] NOT NULL, "
    "revision int4 NOT NULL, source varchar(16) NOT NULL, received_at timestamptz NOT NULL, "
    "PRIMARY KEY (meter_id, day, first_slot))"
)
COPY = (
    "COPY columnar_readings (meter_id, day, first_slot, import_wh, export_wh, quality, "
    "verified, revision, source, received_at) FROM STDIN (FORMAT BINARY)"
)
HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
TRAILER = b"\xff\xff"
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
INT8_OID, INT2_OID, BOOL_OID = 20, 21, 16
QUALITY_CODES = {None: 0, "high": 1, "medium": 2, "low": 3, "estimated": 4}
DAY = 86_400
SLOT = 900


def _array(values: np.ndarray, oid: int, dtype: str) -> bytes:
    """A one-dimensional array without NULLs in PostgreSQL's binary format."""
    n = len(values)
    size = np.dtype(dtype).itemsize
    body = np.empty(n, dtype=[("len", ">i4"), ("value", dtype)])
    body["len"] = size
    body["value"] = values
    head = struct.pack(">iiIii", 1, 0, oid, n, 1)
    return struct.pack(">i", len(head) + n * (4 + size)) + head + body.tobytes()


def _field(value: bytes) -> bytes:
    return struct.pack(">i", len(value)) + value


def encode(
    meter_ids: list[str],
    starts: list[int],
    import_wh: list[int],
    export_wh: list[int],
    quality: list[str | None],
    source: str,
    received_at: datetime,
) -> bytes:
    """A binary COPY body of the batch's rows: readings grouped by meter and day, each run of
    consecutive intervals one row."""
    runs: dict[tuple[str, int], list[int]] = defaultdict(list)
    for position, (meter, start) in enumerate(zip(meter_ids, starts, strict=True)):
        runs[(meter, start // DAY * DAY)].append(position)
    received = struct.pack(">q", (received_at - PG_EPOCH) // timedelta(microseconds=1))
    source_bytes = source.encode()
    imports = np.array(import_wh, dtype=np.int64)
    exports = np.array(export_wh, dtype=np.int64)
    qualities = np.array([QUALITY_CODES[q] for q in quality], dtype=np.int16)
    slots = np.array(starts, dtype=np.int64)
    parts = [HEADER]
    for (meter, day), positions in runs.items():
        at = np.array(positions)
        at = at[np.argsort(slots[at])]
        slot = (slots[at] - day) // SLOT
        breaks = np.flatnonzero(np.diff(slot) != 1) + 1
        for run in np.split(np.arange(len(at)), breaks):
            rows = at[run]
            parts += [
                struct.pack(">h", 10),
                _field(meter.encode()),
                _field(struct.pack(">q", day)),
                _field(struct.pack(">h", int(slot[run[0]]))),
                _array(imports[rows], INT8_OID, ">i8"),
                _array(exports[rows], INT8_OID, ">i8"),
                _array(qualities[rows], INT2_OID, ">i2"),
                _array(np.zeros(len(rows), dtype=bool), BOOL_OID, "?"),
                _field(struct.pack(">i", 0)),
                _field(source_bytes),
                _field(received),
            ]
    parts.append(TRAILER)
    return b"".join(parts)

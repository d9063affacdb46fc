"""Telemetry samples into `der_telemetry` by one binary COPY, built by columns.

A batch of samples is usually new: it is COPYed (binary format, inside a savepoint) straight
into the table. Rows agreeing on metric, on whether they carry a value and on the length of
their status have one fixed binary layout: each such group is one numpy structured array, filled
column by column (a gateway's batch is one group). If the unique key (resource, metric, at)
refuses the COPY (a redelivered message, a repeated sample), the savepoint is rolled back and
`indexer.bulk.insert_new` stores the new rows through a staging table. Elsewhere than on
PostgreSQL, `insert_new` alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg
from psycopg.errors import UniqueViolation
from sqlalchemy.engine import Connection

from backend.meters.copy_in import HEADER, PG_EPOCH, TRAILER, binary_rows
from backend.resources.models import TelemetrySample
from indexer.bulk import insert_new

if TYPE_CHECKING:
    from backend.resources.telemetry import Sample

TABLE = TelemetrySample.__table__  # type: ignore[attr-defined]
KEY = ["resource_id", "metric", "at"]  # unique: a redelivered sample is stored once
COPY_SAMPLES = (
    "COPY der_telemetry (resource_id, metric, at, value, status, received_at) "
    "FROM STDIN (FORMAT BINARY)"
)
MAX_LAYOUTS = 8  # beyond, the row writer of insert_new


def copy_samples(
    connection: Connection,
    samples: Sequence[Sample],
    values: Sequence[int | None],
    received_at: datetime,
) -> list[bool]:
    """Store each sample with its integer value; per sample whether it went in (of samples
    sharing a key not stored yet, the first did). The caller commits."""
    if not samples:
        return []
    driver = connection.connection.driver_connection
    parts = encode(samples, values, received_at) if isinstance(driver, psycopg.Connection) else None
    if parts is not None and isinstance(driver, psycopg.Connection):
        try:
            with driver.transaction(), driver.cursor().copy(COPY_SAMPLES) as copy:
                for part in parts:
                    copy.write(part)
            return [True] * len(samples)
        except UniqueViolation:
            pass
    rows = [
        {
            "resource_id": s.resource_id,
            "metric": s.metric.value,
            "at": s.at,
            "value": value,
            "status": s.status,
            "received_at": received_at,
        }
        for s, value in zip(samples, values, strict=True)
    ]
    return insert_new(connection, TABLE, rows, KEY)


def encode(
    samples: Sequence[Sample], values: Sequence[int | None], received_at: datetime
) -> list[bytes | memoryview] | None:
    """The parts of a binary COPY body for COPY_SAMPLES; None beyond MAX_LAYOUTS layouts."""
    groups: dict[tuple[str, bool, int], list[int]] = defaultdict(list)
    statuses = [None if s.status is None else s.status.encode() for s in samples]
    for index, (sample, value, status) in enumerate(zip(samples, values, statuses, strict=True)):
        groups[
            sample.metric.value, value is not None, -1 if status is None else len(status)
        ].append(index)
    if len(groups) > MAX_LAYOUTS:
        return None
    ids = {rid: rid.bytes for rid in {s.resource_id for s in samples}}
    resource_ids = np.array([ids[s.resource_id] for s in samples], dtype="S16")
    ats = np.array([s.at for s in samples], dtype=np.int64)
    received = (received_at - PG_EPOCH) // timedelta(microseconds=1)
    parts: list[bytes | memoryview] = [HEADER]
    for (metric, valued, status_length), where in groups.items():
        at = np.array(where, dtype=np.int64)
        fields: list[tuple[str, str | None, Any]] = [
            ("resource_id", "S16", resource_ids[at]),
            ("metric", f"S{len(metric)}", metric.encode()),
            ("at", ">i8", ats[at]),
            ("value", ">i8" if valued else None, [values[i] for i in where] if valued else None),
            (
                "status",
                None if status_length < 0 else f"S{status_length}",
                None if status_length < 0 else [statuses[i] for i in where],
            ),
            ("received_at", ">i8", received),
        ]
        parts.append(binary_rows(fields, len(where)))
    parts.append(TRAILER)
    return parts

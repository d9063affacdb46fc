"""Readings of new intervals go into `meter_readings` by one binary COPY.

Most batches only add intervals never stored before: for them the set-based merge (staging
table, INSERT ... ON CONFLICT, corrections, updates) is a second copy of every row. So a batch
is first COPYed (binary format) straight into the table inside a savepoint; if any of its
intervals is already stored (or is repeated in the batch, or is being stored by a concurrent
transaction that commits first) the unique key refuses the COPY, the savepoint is rolled back
and the caller merges the batch instead. A batch the COPY stored is exactly what the merge
would have done with it: every row new, accepted, revision 0.
"""

from __future__ import annotations

from datetime import datetime
from itertools import repeat

import psycopg
from psycopg.errors import UniqueViolation
from sqlalchemy.engine import Connection

from backend.meters.batch import Columns
from backend.meters.models import INTERVAL_SECONDS

COPY_READINGS = (
    "COPY meter_readings (meter_id, interval_start, interval_s, import_wh, export_wh, "
    "voltage_v, current_a, power_factor, quality, revision, source, verified, signature, "
    "signer, received_at) FROM STDIN (FORMAT BINARY)"
)
TYPES = [
    "varchar",
    "int8",
    "int4",
    "int8",
    "int8",
    "float8",
    "float8",
    "float8",
    "varchar",
    "int4",
    "varchar",
    "bool",
    "varchar",
    "varchar",
    "timestamptz",
]


def copy_new(connection: Connection, rows: Columns, source: str, received_at: datetime) -> bool:
    """COPY `rows` into `meter_readings`; False (nothing stored) when one of their intervals
    is taken, or on a database other than PostgreSQL. Caller commits."""
    driver = connection.connection.driver_connection
    if not rows or not isinstance(driver, psycopg.Connection):
        return False
    n = len(rows)
    try:
        with driver.transaction(), driver.cursor().copy(COPY_READINGS) as copy:
            copy.set_types(TYPES)
            for record in zip(
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
            ):
                copy.write_row(record)
    except UniqueViolation:
        return False
    return True

"""Binary COPY encoding shared by the ingest paths: the PGCOPY framing (`HEADER`, `TRAILER`,
`PG_EPOCH`, `binary_rows`) used by the interval runs (backend/meters/runs.py) and telemetry
(backend/resources/telemetry_copy.py). The row-per-reading encoder of the former row layout
lives in the bench (bench/_row_copy.py), the only place that still writes that layout.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
TRAILER = b"\xff\xff"
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def binary_rows(fields: list[tuple[str, str | None, Any]], n: int) -> memoryview:
    """`n` rows of one fixed layout of a binary COPY body, filled column by column; `fields`
    in the table's column order: (name, numpy type or None for NULL, values or one value)."""
    block = np.empty(n, dtype=np.dtype(_layout(fields)))
    block["count"] = len(fields)
    for name, field_type, values in fields:
        block[f"{name}_len"] = -1 if field_type is None else np.dtype(field_type).itemsize
        if field_type is not None:
            block[name] = values
    return block.data


def _layout(fields: list[tuple[str, str | None, Any]]) -> list[tuple[str, str]]:
    layout = [("count", ">i2")]
    for name, kind, _ in fields:
        layout.append((f"{name}_len", ">i4"))
        if kind is not None:
            layout.append((name, kind))
    return layout

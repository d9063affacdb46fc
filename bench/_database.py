"""A throw-away, migrated PostgreSQL schema for benchmarks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from backend.core.migrate import scratch_schema as migrated_schema

BENCH_DATABASE_URL = os.environ.get(
    "GRIDLEDGER_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def scratch_schema() -> Iterator[str]:
    with migrated_schema(BENCH_DATABASE_URL, prefix="gl_bench") as url:
        yield url

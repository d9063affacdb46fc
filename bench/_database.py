"""A throw-away, migrated PostgreSQL schema for benchmarks."""

from __future__ import annotations

import os
from contextlib import contextmanager

from backend.core.migrate import scratch_schema as migrated_schema

BENCH_DATABASE_URL = os.environ.get(
    "GRIDLEDGER_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def scratch_schema():
    with migrated_schema(BENCH_DATABASE_URL, prefix="gl_bench") as url:
        yield url

"""A throw-away, migrated PostgreSQL schema for benchmarks."""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import make_url

from backend.core.db import make_engine
from backend.core.migrate import upgrade

BENCH_DATABASE_URL = os.environ.get(
    "GRIDLEDGER_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def scratch_schema():
    schema = f"gl_bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(BENCH_DATABASE_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(BENCH_DATABASE_URL).update_query_dict(
        {"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

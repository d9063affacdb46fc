"""Thin Celery task over backend/meters/compaction: join finished days' adjacent reading runs."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

import psycopg
from sqlalchemy.exc import OperationalError

from backend.chain import clock
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.meters.compaction import compact
from backend.workers.app import app

log = logging.getLogger("gridledger.workers")


@app.task(
    name="meters.compact_runs",
    autoretry_for=(OperationalError, psycopg.OperationalError, ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=5,
)
def compact_runs(rounds: int = 20) -> dict[str, Any]:
    """Up to `rounds` compactions of 500 meter-days each (a no-op on SQLite: rows, not runs)."""
    settings = get_settings()
    total = {"meter_days": 0, "runs_before": 0, "runs_after": 0}
    with get_engine().connect() as connection:
        driver = connection.connection.driver_connection
        if not isinstance(driver, psycopg.Connection):
            return total
        for _ in range(rounds):
            done = compact(driver, clock.now(settings), days=settings.reading_compaction_days)
            for key, value in asdict(done).items():
                total[key] += value
            if done.meter_days == 0:
                break
    if total["meter_days"]:
        log.info("reading runs joined: %s", total)
    return total

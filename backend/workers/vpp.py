"""Thin Celery task over backend/vpp/daily.py: the daily optimisation of every VPP."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.vpp.daily import optimize_all
from backend.workers.app import app

log = logging.getLogger("gridledger.workers")


@app.task(
    name="vpp.optimize_daily",
    autoretry_for=(OperationalError, ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=5,
)
def optimize_daily() -> dict[str, Any]:
    with Session(get_engine()) as session:
        report = optimize_all(session, get_settings())
    if report.planned or report.failed:
        log.info("daily VPP schedules: %s", asdict(report))
    return asdict(report)

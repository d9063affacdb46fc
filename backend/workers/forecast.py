"""Thin Celery task over backend/forecast: the daily refit of every VPP's forecast."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.forecast.services import refresh_vpp_forecasts
from backend.workers.app import app

log = logging.getLogger("gridledger.workers")


@app.task(
    name="forecast.refresh_vpps",
    autoretry_for=(OperationalError, ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=5,
)
def refresh_vpps() -> dict[str, Any]:
    with Session(get_engine()) as session:
        report = refresh_vpp_forecasts(session, get_settings())
    if report.skipped:
        log.info("VPP forecasts skipped: %s", report.skipped)
    return asdict(report)

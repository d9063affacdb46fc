"""Thin Celery tasks over backend/dr: settle ended DR events on chain."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from sqlmodel import Session

from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.dr import settlement
from backend.workers.app import app
from backend.workers.settlement import TRANSIENT, chain, locks

log = logging.getLogger("gridledger.workers")


@app.task(name="dr.settle_events", autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5)
def settle_events(now: int | None = None) -> list[dict[str, Any]]:
    with Session(get_engine()) as session:
        reports = settlement.settle_due_events(session, chain(), locks(), get_settings(), now)
    done = [asdict(r) for r in reports if not r.waiting]
    if done:
        log.info("settled DR events: %s", done)
    return [asdict(r) for r in reports]

"""Thin Celery tasks over backend/settlement services."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from functools import lru_cache
from typing import Any

from requests.exceptions import ConnectionError as RpcConnectionError
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.settlement import flags, issuance, services
from backend.settlement.chain import ChainContext
from backend.settlement.locks import Locks, locks_from_settings
from backend.workers.app import app

log = logging.getLogger("gridledger.workers")
TRANSIENT = (RpcConnectionError, OperationalError, ConnectionError, TimeoutError)


@lru_cache
def chain() -> ChainContext:
    return ChainContext.from_settings(get_settings())


@lru_cache
def locks() -> Locks:
    return locks_from_settings(get_settings())


@app.task(
    name="settlement.close_periods", autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5
)
def close_periods(now: int | None = None) -> list[dict[str, Any]]:
    with Session(get_engine()) as session:
        reports = services.close_due_periods(session, chain(), locks(), get_settings(), now)
    if reports:
        log.info("closed periods: %s", [asdict(r) for r in reports])
    return [asdict(r) for r in reports]


@app.task(
    name="settlement.issue_certificates", autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5
)
def issue_certificates(now: int | None = None) -> dict[str, Any]:
    with Session(get_engine()) as session:
        report = issuance.issue_certificates(session, chain(), locks(), get_settings(), now)
    return asdict(report)


@app.task(
    name="settlement.record_corrections", autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5
)
def record_corrections(days: int = 7) -> int:
    with Session(get_engine()) as session:
        return len(services.record_corrections(session, since=int(time.time()) - days * 86_400))


@app.task(name="settlement.scan_meters", autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5)
def scan_meters(silence_s: int = 3_600) -> int:
    with Session(get_engine()) as session:
        return flags.scan_meters(session, chain().now(), silence_s=silence_s)

"""Thin Celery tasks over backend/vpp: the daily optimisation of every VPP, the aggregators'
orders after the daily forecast and optimisation, the patches that deliver the battery
headroom filled orders rely on, and the pro-rata allocation of settled VPP trades to member
meters."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from requests.exceptions import ConnectionError as RpcConnectionError
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from backend.chain import clock
from backend.chain.contracts import chain_for
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.vpp.daily import optimize_all
from backend.vpp.flex_delivery import deliver_flex
from backend.vpp.payouts import allocate_settled
from backend.vpp.trading import trade_all_vpps
from backend.workers.app import app

log = logging.getLogger("gridledger.workers")
TRANSIENT = (RpcConnectionError, OperationalError, ConnectionError, TimeoutError)


@app.task(name="vpp.optimize_daily", autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5)
def optimize_daily() -> dict[str, Any]:
    with Session(get_engine()) as session:
        report = optimize_all(session, get_settings())
    if report.planned or report.failed:
        log.info("daily VPP schedules: %s", asdict(report))
    return asdict(report)


@app.task(name="vpp.trade", autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5)
def trade() -> dict[str, Any]:
    settings = get_settings()
    with Session(get_engine()) as session:
        report = trade_all_vpps(session, settings, chain_for(settings))
    if report.skipped:
        log.info("VPP trading skipped: %s", report.skipped)
    return asdict(report)


@app.task(name="vpp.deliver_flex", autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5)
def deliver_flexibility() -> dict[str, Any]:
    settings = get_settings()
    now = int(clock.utc_now(settings).timestamp())
    with Session(get_engine()) as session:
        report = deliver_flex(session, settings, now)
    if report.patches:
        log.info("VPP flexibility patches: %s", asdict(report))
    return asdict(report)


@app.task(name="vpp.allocate", autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5)
def allocate() -> int:
    with Session(get_engine()) as session:
        return allocate_settled(session)

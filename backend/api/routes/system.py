"""`/health` (database, Redis, chain RPC, indexer lag, and freshness: settlement, issuance,
heartbeats, outbox) and `/metrics` (Prometheus, with the freshness figures as gauges).

Least exposure: anyone sees whether each dependency answers, the public figures (blocks, lag,
queue depth) and each freshness check's status; why a check failed (the error text, which can
name hosts and users) and what is late since when are for operators only. A dependency that
does not answer makes /health 503; a stale freshness check makes it `degraded` with 200 (the
API itself serves: a load balancer should keep it). `/metrics` is for the scraper: a bearer
token, or loopback on the devnet.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable, Mapping
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    generate_latest,
    multiprocess,
)
from sqlalchemy import text
from sqlmodel import col, select

from backend.accounts.models import Role
from backend.api.deps import SessionDep, SettingsDep, StoreDep, current_account
from backend.api.problem_docs import raises
from backend.chain.contracts import chain_for
from backend.core.config import Settings
from backend.core.errors import RateLimited, Unauthenticated
from backend.deadletters.metrics import dead_letter_metrics
from backend.health.freshness import Freshness, freshness
from backend.workers.queue import queue_depth
from indexer.models import IndexerCursor

router = APIRouter(tags=["system"])


Probe = Callable[[], Mapping[str, object] | None]
PRIVATE_DETAILS = ("error",)  # raw dependency errors name hosts, ports and users
PUBLIC_FRESHNESS = ("ok", "status")  # what is late, and since when, is for operators
LOOPBACK = frozenset({"127.0.0.1", "::1"})


def _check(name: str, checks: dict[str, dict[str, object]], probe: Probe) -> None:
    started = time.perf_counter()
    try:
        checks[name] = {"ok": True, **(probe() or {})}
    except Exception as exc:  # a health check reports every failure instead of raising
        checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:160]}"}
    checks[name]["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)


@router.get(
    "/health",
    responses={
        503: {"description": "A dependency is down", "content": {"application/json": {}}},
        **raises(Unauthenticated, RateLimited),  # credentials sent, but not valid
    },
)
def health(
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """200 when every dependency answers, else 503; indexer lag in blocks and seconds; each
    freshness check `ok` or `degraded` (then the status is `degraded`). Sent with an
    operator's credentials, failed checks say why and late ones what and since when."""
    operator = bool(authorization or x_api_key) and current_account(
        session, settings, store, authorization, x_api_key
    ).has_role(Role.OPERATOR)
    checks: dict[str, dict[str, object]] = {}
    head: dict[str, int] = {}

    def database() -> None:
        session.connection().execute(text("SELECT 1")).one()

    def redis() -> dict[str, object]:
        store.ping()
        return {"configured": bool(settings.redis_url)}

    _check("database", checks, database)
    _check("redis", checks, redis)

    def rpc() -> dict[str, object]:
        block = chain_for(settings).w3.eth.get_block("latest")
        head.update(number=block["number"], timestamp=block["timestamp"])
        return {"head_block": block["number"]}

    _check("rpc", checks, rpc)

    def indexer() -> dict[str, object]:
        cursor = session.exec(
            select(IndexerCursor).order_by(col(IndexerCursor.block_number).desc())
        ).first()
        if cursor is None:
            raise LookupError("indexer has not started (no cursor)")
        head_block = head.get("number", cursor.head_block)
        head_time = head.get("timestamp", cursor.head_timestamp)
        return {
            "indexed_block": cursor.block_number,
            "lag_blocks": max(head_block - cursor.block_number, 0),
            "lag_seconds": max(head_time - cursor.block_timestamp, 0),
        }

    _check("indexer", checks, indexer)
    _check("queue", checks, lambda: queue_depth(settings))
    reachable = all(c["ok"] for c in checks.values())
    fresh = _freshness(session, settings, head.get("timestamp"))
    if not operator:
        for check in checks.values():
            for private in PRIVATE_DETAILS:
                check.pop(private, None)
        for name, value in fresh.items():
            fresh[name] = {k: v for k, v in value.items() if k in PUBLIC_FRESHNESS}
    healthy = reachable and all(c["ok"] for c in fresh.values())
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", "checks": {**checks, **fresh}},
        status_code=200 if reachable else 503,
    )


def _settlement_now(settings: Settings, head_timestamp: int | None) -> int:
    """The clock settlement runs on: the head block's time under GRIDLEDGER_CLOCK=chain."""
    if settings.clock == "chain" and head_timestamp is not None:
        return head_timestamp
    return int(time.time())


def _freshness(
    session: SessionDep, settings: Settings, head_timestamp: int | None
) -> dict[str, dict[str, object]]:
    try:
        checks = freshness(session, settings, now=_settlement_now(settings, head_timestamp))
    except Exception as exc:  # the database check above already says it does not answer
        return {"freshness": {"ok": False, "status": "degraded", "error": type(exc).__name__}}
    return {name: check.as_dict() for name, check in checks.items()}


@router.get("/metrics", include_in_schema=False)
def metrics(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    """This process's metrics, or every worker's when `python -m backend` runs several
    (PROMETHEUS_MULTIPROC_DIR, set by backend/__main__.py); then the freshness gauges,
    computed at scrape time (the same figures as /health)."""
    _check_scraper(request, settings, authorization)
    stored = dead_letter_metrics(session)  # read from the database: any process may add them
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest()
    return Response(
        body + stored + _freshness_gauges(session, settings), media_type=CONTENT_TYPE_LATEST
    )


def _freshness_gauges(session: SessionDep, settings: Settings) -> bytes:
    """`gridledger_freshness_ok{check}` and `gridledger_freshness{check,figure}` for every
    numeric figure of every freshness check; nothing when the database does not answer."""
    try:
        now = _settlement_now(
            settings,
            chain_for(settings).w3.eth.get_block("latest")["timestamp"]
            if settings.clock == "chain"
            else None,
        )
        checks: dict[str, Freshness] = freshness(session, settings, now=now)
    except Exception:  # a scrape never fails on a dependency; /health says which one
        return b""
    registry = CollectorRegistry()
    ok = Gauge(
        "gridledger_freshness_ok",
        "1 when the check is within its threshold",
        ["check"],
        registry=registry,
    )
    figure = Gauge(
        "gridledger_freshness",
        "Freshness figures: late_s, age_s, oldest_age_s (seconds), backlog and counts",
        ["check", "figure"],
        registry=registry,
    )
    for name, check in checks.items():
        ok.labels(name).set(1 if check.ok else 0)
        for key, value in check.figures.items():
            if isinstance(value, int | float) and not key.startswith("oldest_"):
                figure.labels(name, key).set(value)
    return generate_latest(registry)


def _check_scraper(request: Request, settings: Settings, authorization: str | None) -> None:
    token = settings.metrics_token
    if token is not None:
        presented = (authorization or "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(presented.encode(), token.get_secret_value().encode()):
            raise Unauthenticated("send Authorization: Bearer <GRIDLEDGER_METRICS_TOKEN>")
        return
    client = request.client.host if request.client else ""
    if settings.requires_production_secrets or client not in LOOPBACK:
        raise Unauthenticated(
            "metrics are served to loopback clients on the local devnet only; "
            "set GRIDLEDGER_METRICS_TOKEN and scrape with it"
        )

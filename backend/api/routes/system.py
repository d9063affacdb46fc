"""`/health` (database, Redis, chain RPC, indexer lag) and `/metrics` (Prometheus)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from sqlalchemy import text
from sqlmodel import col, select

from backend.api.deps import SessionDep, SettingsDep, StoreDep
from backend.chain.contracts import chain_for
from backend.workers.queue import queue_depth
from indexer.models import IndexerCursor

router = APIRouter(tags=["system"])


Probe = Callable[[], Mapping[str, object] | None]


def _check(name: str, checks: dict[str, dict[str, object]], probe: Probe) -> None:
    started = time.perf_counter()
    try:
        checks[name] = {"ok": True, **(probe() or {})}
    except Exception as exc:  # a health check reports every failure instead of raising
        checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:160]}"}
    checks[name]["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)


@router.get(
    "/health",
    responses={503: {"description": "A dependency is down", "content": {"application/json": {}}}},
)
def health(session: SessionDep, settings: SettingsDep, store: StoreDep) -> JSONResponse:
    """200 when every dependency answers, else 503; indexer lag in blocks and seconds."""
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
    healthy = all(c["ok"] for c in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", "checks": checks},
        status_code=200 if healthy else 503,
    )


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    """This process's metrics, or every worker's when `python -m backend` runs several
    (PROMETHEUS_MULTIPROC_DIR, set by backend/__main__.py)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

"""`/health` (database, Redis, chain RPC, indexer lag) and `/metrics` (Prometheus)."""

from __future__ import annotations

import os
import time

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from sqlalchemy import text
from sqlmodel import select

from backend.api.deps import SessionDep, SettingsDep, StoreDep
from backend.chain.contracts import chain_for
from backend.workers.queue import queue_depth
from indexer.models import IndexerCursor

router = APIRouter(tags=["system"])


def _check(name: str, checks: dict, probe) -> None:
    started = time.perf_counter()
    try:
        checks[name] = {"ok": True, **(probe() or {})}
    except Exception as exc:  # a health check reports every failure instead of raising
        checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:160]}"}
    checks[name]["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)


@router.get("/health")
def health(session: SessionDep, settings: SettingsDep, store: StoreDep):
    """200 when every dependency answers, else 503; indexer lag in blocks and seconds."""
    checks: dict = {}
    head: dict = {}
    _check("database", checks, lambda: session.exec(text("SELECT 1")).one() and None)
    _check("redis", checks, lambda: store.ping() or {"configured": bool(settings.redis_url)})

    def rpc():
        block = chain_for(settings).w3.eth.get_block("latest")
        head.update(number=block["number"], timestamp=block["timestamp"])
        return {"head_block": block["number"]}

    _check("rpc", checks, rpc)

    def indexer():
        cursor = session.exec(
            select(IndexerCursor).order_by(IndexerCursor.block_number.desc())
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
def metrics():
    """This process's metrics, or every worker's when `python -m backend` runs several
    (PROMETHEUS_MULTIPROC_DIR, set by backend/__main__.py)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

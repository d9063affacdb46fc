"""The FastAPI application: `uvicorn backend.main:app` or `python -m backend`."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from backend.api.change_feed import watch_outbox
from backend.api.fast_book import OrderBookPath
from backend.api.fast_orders import OrderIntakePath
from backend.api.fast_private import PrivateReadsPath
from backend.api.fast_trades import TradesPath
from backend.api.middleware import IdempotencyMiddleware, MetricsMiddleware
from backend.api.problem_docs import install_problem_docs
from backend.api.problems import install_problem_handlers
from backend.api.read_cache import ReadCache, ReadCacheMiddleware
from backend.api.replay_guard import caller_still_allowed
from backend.api.routes import CACHED_PUBLIC_READS, api_router, system
from backend.core.async_db import close_pools
from backend.core.config import Settings, get_settings
from backend.core.errors import ServiceUnavailable
from backend.market.order_writer import close_writers

DASHBOARD_DIR = Path(__file__).parent / "dashboard" / "static"


class DashboardNotBuilt(ServiceUnavailable):
    code = "dashboard-not-built"
    title = "The dashboard has not been built"


def mount_dashboard(app: FastAPI, directory: Path = DASHBOARD_DIR) -> None:
    """`/` serves the dashboard's index.html, `/assets/...` its bundle (built by
    `npm run build:dashboard`, which `make setup` runs when the sources change)."""

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        index = directory / "index.html"
        if not index.is_file():
            raise DashboardNotBuilt("run `make setup` (or `npm run build:dashboard`) to build it")
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    app.mount(
        "/assets",
        StaticFiles(directory=directory / "assets", check_dir=False),
        name="dashboard-assets",
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Runs the change feed that invalidates this worker's read cache."""
    settings: Settings = app.dependency_overrides.get(get_settings, get_settings)()
    cache: ReadCache = app.state.read_cache
    cache.ttl_s, cache.max_bytes = settings.public_cache_ttl_s, settings.public_cache_max_bytes
    feed = (
        asyncio.create_task(watch_outbox(settings, cache.invalidate))
        if settings.public_cache_ttl_s > 0
        else None
    )
    # Everything imported so far lives as long as the process: keep it out of the collector's
    # full passes, which otherwise stall every request for 50-200 ms now and then.
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        await close_writers()
        close_pools()
        if feed is not None:
            feed.cancel()
            await asyncio.gather(feed, return_exceptions=True)


def create_app() -> FastAPI:
    app = FastAPI(
        lifespan=lifespan,
        title="GridLedger",
        version="0.1.0",
        summary="Peer-to-peer energy market and REC registry API (WIA-ENE-014 style, under /v1)",
        openapi_url="/openapi.json",
        docs_url="/docs",
        # Our metrics are Prometheus (`/metrics`); with OpenTelemetry not configured, FastAPI's
        # own hooks would still look up three providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_problem_handlers(app)
    defaults = get_settings()
    app.state.read_cache = ReadCache(
        CACHED_PUBLIC_READS,
        ttl_s=defaults.public_cache_ttl_s,
        max_bytes=defaults.public_cache_max_bytes,
    )
    app.add_middleware(OrderIntakePath)  # innermost: inside idempotency and the read cache
    app.add_middleware(PrivateReadsPath)  # the read fast paths: after the read cache and metrics
    app.add_middleware(TradesPath)
    app.add_middleware(OrderBookPath)
    app.add_middleware(IdempotencyMiddleware, replay_guard=caller_still_allowed)
    app.add_middleware(ReadCacheMiddleware, cache=app.state.read_cache)
    app.add_middleware(MetricsMiddleware)
    app.include_router(api_router, prefix="/v1")
    app.include_router(system.router)
    mount_dashboard(app)
    install_problem_docs(app)
    return app


app = create_app()

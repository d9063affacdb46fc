"""The FastAPI application: `uvicorn backend.main:app` or `python -m backend`."""
from __future__ import annotations

from fastapi import FastAPI

from backend.api.middleware import IdempotencyMiddleware, MetricsMiddleware
from backend.api.problems import install_problem_handlers
from backend.api.routes import api_router, system


def create_app() -> FastAPI:
    app = FastAPI(
        title="GridLedger",
        version="0.1.0",
        summary="Peer-to-peer energy market and REC registry API (WIA-ENE-014 style, under /v1)",
        openapi_url="/openapi.json",
        docs_url="/docs",
    )
    install_problem_handlers(app)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(MetricsMiddleware)
    app.include_router(api_router, prefix="/v1")
    app.include_router(system.router)
    return app


app = create_app()

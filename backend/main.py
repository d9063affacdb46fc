"""The FastAPI application: `uvicorn backend.main:app` or `python -m backend`."""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from backend.api.middleware import IdempotencyMiddleware, MetricsMiddleware
from backend.api.problems import install_problem_handlers
from backend.api.routes import api_router, system
from backend.core.errors import ServiceUnavailable

DASHBOARD_DIR = Path(__file__).parent / "dashboard" / "static"


class DashboardNotBuilt(ServiceUnavailable):
    code = "dashboard-not-built"
    title = "The dashboard has not been built"


def mount_dashboard(app: FastAPI, directory: Path = DASHBOARD_DIR) -> None:
    """`/` serves the dashboard's index.html, `/assets/...` its bundle (built by
    `npm run build:dashboard`, which `make setup` runs when the sources change)."""

    @app.get("/", include_in_schema=False)
    def dashboard():
        index = directory / "index.html"
        if not index.is_file():
            raise DashboardNotBuilt("run `make setup` (or `npm run build:dashboard`) to build it")
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    app.mount("/assets", StaticFiles(directory=directory / "assets", check_dir=False), name="dashboard-assets")


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
    mount_dashboard(app)
    return app


app = create_app()

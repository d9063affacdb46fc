"""`python -m backend`: serve the API on the host and port from settings, with
`GRIDLEDGER_API_WORKERS` uvicorn processes."""

import os
import shutil

import uvicorn

from backend.core.config import Settings
from backend.core.startup import settings_or_exit


def serve(settings: Settings) -> None:
    if settings.api_workers > 1:  # one /metrics for all workers: prometheus multiprocess mode
        metrics_dir = settings.data_dir / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    uvicorn.run(
        "backend.main:app",
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        loop="uvloop",
        http="httptools",
        workers=settings.api_workers,
    )


if __name__ == "__main__":
    serve(settings_or_exit("api"))

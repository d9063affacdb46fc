"""`python -m backend`: serve the API on the host and port from settings, with
`GRIDLEDGER_API_WORKERS` uvicorn processes; over HTTPS (TLS 1.3) when `GRIDLEDGER_TLS` is set."""

import os
import shutil

import uvicorn

from backend.core.config import Settings
from backend.core.startup import settings_or_exit
from backend.core.tls import prepare, uvicorn_options


def serve(settings: Settings) -> None:
    if settings.api_workers > 1:  # one /metrics for all workers: prometheus multiprocess mode
        metrics_dir = settings.data_dir / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    prepare(settings)  # GRIDLEDGER_TLS=dev: the development CA's files, made once
    uvicorn.run(
        "backend.main:app",
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        loop="uvloop",
        http="httptools",
        workers=settings.api_workers,
        **uvicorn_options(settings),  # HTTPS, TLS 1.3 minimum, when GRIDLEDGER_TLS is set
    )


if __name__ == "__main__":
    serve(settings_or_exit("api"))

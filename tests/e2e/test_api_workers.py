"""`python -m backend` with several uvicorn workers: they share one socket, and `/metrics`
adds up what every worker counted (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from backend.core.config import PROJECT_ROOT
from backend.core.processes import stop_process
from tests.fixtures.server import free_port
from tests.fixtures.services import TEST_REDIS_URL

REQUESTS = 60


def trades_counted(metrics: str) -> int:
    return sum(
        int(float(value))
        for value in re.findall(
            r'^gridledger_http_requests_total\{[^}]*route="/v1/trading/trades"[^}]*\} (\S+)$',
            metrics,
            re.M,
        )
    )


def test_two_workers_one_metrics_endpoint(fresh_pg_url, redis_client, tmp_path: Path):
    port = free_port()
    env = {
        **os.environ,
        "GRIDLEDGER_API_WORKERS": "2",
        "GRIDLEDGER_API_PORT": str(port),
        "GRIDLEDGER_DATABASE_URL": fresh_pg_url,
        "GRIDLEDGER_REDIS_URL": TEST_REDIS_URL,
        "GRIDLEDGER_DATA_DIR": str(tmp_path),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "backend"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        workers: list[str] = []
        while len(workers) < 2:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "two API workers did not start"
            workers = subprocess.run(
                ["pgrep", "-P", str(process.pid), "-f", "multiprocessing"],
                capture_output=True,
                text=True,
            ).stdout.split()
            time.sleep(0.2)
        for _ in range(REQUESTS):  # a new connection each: the kernel spreads them over the workers
            while True:
                try:
                    assert httpx.get(base + "/v1/trading/trades", timeout=5).status_code == 200
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the API did not answer"
                    time.sleep(0.1)
        for _ in range(5):  # whichever worker answers, it reports all of them
            assert trades_counted(httpx.get(base + "/metrics", timeout=5).text) == REQUESTS
        assert len(list((tmp_path / "prometheus").glob("*.db"))) >= 2
    finally:
        stop_process(process)

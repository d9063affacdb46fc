"""Shared plumbing of the API benchmarks: a deployed Anvil, a scratch schema and uvicorn in a
subprocess (the load generator is wrk, bench/_wrk.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from web3 import Web3

from backend.chain.anvil import free_port, start_anvil
from backend.chain.deployment import Deployment
from backend.core.config import PROJECT_ROOT, Settings
from bench._database import scratch_schema
from scripts.deploy import deploy_all

REDIS_URL = os.environ.get("GRIDLEDGER_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


@contextmanager
def api_environment() -> Iterator[tuple[Settings, Deployment]]:
    """(settings, deployment) with a migrated schema and contracts on a fresh Anvil."""
    node = start_anvil()
    try:
        with scratch_schema() as url, tempfile.TemporaryDirectory() as data_dir:
            settings = Settings(
                _env_file=None,
                data_dir=Path(data_dir),
                rpc_url=node.rpc_url,
                database_url=url,
                redis_url=REDIS_URL,
                rate_limit_per_minute=10**9,
            )
            deployment = deploy_all(Web3(Web3.HTTPProvider(node.rpc_url)), settings)
            yield settings, deployment
    finally:
        node.stop()


def peak_rss_mb(process: subprocess.Popen[bytes]) -> float:
    """The peak resident set (VmHWM) of a running server process, in MiB."""
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmHWM for process {process.pid}")


@contextmanager
def serve(app: str, settings: Settings, workers: int = 1, **overrides: str) -> Iterator[str]:
    """uvicorn (uvloop + httptools, `workers` processes) on a free port; yields the base URL.
    `overrides` are settings by name (`public_cache_ttl_s="0"`)."""
    with serve_process(app, settings, workers, **overrides) as (base, _):
        yield base


@contextmanager
def serve_process(
    app: str, settings: Settings, workers: int = 1, **overrides: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`serve`, yielding the server process too (its memory: `peak_rss_mb`)."""
    port = free_port()
    env = {
        **os.environ,
        **{f"GRIDLEDGER_{k.upper()}": v for k, v in overrides.items()},
        "GRIDLEDGER_DATABASE_URL": settings.database_url,
        "GRIDLEDGER_RPC_URL": settings.rpc_url,
        "GRIDLEDGER_DATA_DIR": str(settings.data_dir),
        "GRIDLEDGER_REDIS_URL": settings.redis_url,
        "GRIDLEDGER_RATE_LIMIT_PER_MINUTE": str(settings.rate_limit_per_minute),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--workers",
            str(workers),
        ],
        cwd=PROJECT_ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(base + "/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"{app} did not start")
        yield base, process
    finally:
        process.terminate()
        process.wait(timeout=10)

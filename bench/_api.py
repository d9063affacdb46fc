"""Shared plumbing of the API benchmarks: a deployed Anvil, a scratch schema, uvicorn in a
subprocess, and an asyncio load generator (httpx, N concurrent keep-alive connections)."""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
from web3 import Web3

from backend.chain.anvil import start_anvil
from backend.core.config import PROJECT_ROOT, Settings
from bench._database import scratch_schema
from scripts.deploy import deploy_all

REDIS_URL = os.environ.get("GRIDLEDGER_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


@contextmanager
def api_environment():
    """(settings, deployment) with a migrated schema and contracts on a fresh Anvil."""
    node = start_anvil()
    try:
        with scratch_schema() as url, tempfile.TemporaryDirectory() as data_dir:
            settings = Settings(_env_file=None, data_dir=Path(data_dir), rpc_url=node.rpc_url, database_url=url,
                                redis_url=REDIS_URL, rate_limit_per_minute=10**9)
            deployment = deploy_all(Web3(Web3.HTTPProvider(node.rpc_url)), settings)
            yield settings, deployment
    finally:
        node.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(app: str, settings: Settings):
    """uvicorn (uvloop + httptools, one worker) on a free port; yields the base URL."""
    port = free_port()
    env = {**os.environ, "GRIDLEDGER_DATABASE_URL": settings.database_url, "GRIDLEDGER_RPC_URL": settings.rpc_url,
           "GRIDLEDGER_DATA_DIR": str(settings.data_dir), "GRIDLEDGER_REDIS_URL": settings.redis_url,
           "GRIDLEDGER_RATE_LIMIT_PER_MINUTE": str(settings.rate_limit_per_minute)}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
         "--loop", "uvloop", "--http", "httptools", "--no-access-log"], cwd=PROJECT_ROOT, env=env)
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
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def _load(url: str, connections: int, duration_s: float, method: str = "GET", body_for=None,
                headers: dict | None = None) -> tuple[int, list[float], int]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30, headers=headers) as client:
        deadline = time.perf_counter() + duration_s
        counter = iter(range(10**9))

        async def worker():
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                if method == "GET":
                    reply = await client.get(url)
                else:
                    reply = await client.post(url, json=body_for(next(counter)))
                latencies.append(time.perf_counter() - started)
                if reply.status_code >= 400:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return int(len(latencies) / elapsed), latencies, errors


def load(url: str, connections: int = 64, duration_s: float = 5.0, **kwargs) -> dict:
    rps, latencies, errors = asyncio.run(_load(url, connections, duration_s, **kwargs))
    return {"rps": rps, "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 2), "requests": len(latencies), "errors": errors}

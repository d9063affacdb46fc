"""Ponder (npm `ponder` 1.0, the project in bench/ponder/) indexing a benchmark chain into the
benchmark's PostgreSQL, in a schema of its own, timed until it reports its backfill done.

Timing: from its HTTP server answering `/health` (Ponder built, connected and started) until
`/ready` answers 200 (historical indexing complete) and its `chain_events` table holds every
log of the chain (the last blocks, within its finality distance, come after /ready as
realtime); its start-up time is reported apart.
Its `chain_events` row count must equal the chain's log count, or the figure is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

from backend.chain.deployment import Deployment

PONDER_DIR = Path(__file__).resolve().parent / "ponder"
PONDER_BIN = PONDER_DIR / "node_modules" / ".bin" / "ponder"


@dataclass
class PonderRun:
    events: int
    indexing_s: float  # /health up -> /ready
    startup_s: float  # spawn -> /health up

    @property
    def events_per_s(self) -> float:
        return self.events / self.indexing_s


def ensure_installed() -> None:
    """Install bench/ponder's locked packages from the npm registry (first run only)."""
    if not PONDER_BIN.exists():
        npm = shutil.which("npm") or "npm"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=PONDER_DIR, check=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def libpq_url(database_url: str) -> str:
    """postgresql+psycopg://... (SQLAlchemy) as the postgresql://... libpq and node-pg read."""
    return "postgresql://" + database_url.split("://", 1)[1]


def run_ponder(
    *,
    rpc_url: str,
    deployment: Deployment,
    database_url: str,
    expected_events: int,
    timeout_s: float = 1_800,
) -> PonderRun:
    ensure_installed()
    schema = f"ponder_bench_{uuid.uuid4().hex[:10]}"
    url = libpq_url(database_url)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "deployment.json"
        spec.write_text(
            json.dumps(
                {
                    "chainId": deployment.chain_id,
                    "rpcUrl": rpc_url,
                    "startBlock": deployment.block_number,
                    "contracts": {
                        name: {"address": c.address, "abi": c.abi}
                        for name, c in deployment.contracts.items()
                    },
                }
            )
        )
        env = {
            **os.environ,
            "PONDER_TELEMETRY_DISABLED": "true",
            "DATABASE_URL": url,
            "GRIDLEDGER_PONDER_DEPLOYMENT": str(spec),
        }
        log_path = Path(tmp) / "ponder.log"
        started = time.perf_counter()
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [str(PONDER_BIN), "start", "--schema", schema, "--port", str(port)],
                cwd=PONDER_DIR,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped with its children
            )
            try:
                up = wait_for(f"http://127.0.0.1:{port}/health", process, started, timeout_s)
                wait_for(f"http://127.0.0.1:{port}/ready", process, started, timeout_s)
                # blocks within its finality distance are indexed after /ready, as realtime
                ready = wait_for_rows(url, schema, expected_events, process, started, timeout_s)
            except RuntimeError as exc:
                tail = log_path.read_text(errors="replace")[-3_000:]
                raise RuntimeError(f"{exc}; Ponder's log ends:\n{tail}") from None
            finally:
                stop(process)
        try:
            with psycopg.connect(url, autocommit=True) as connection:
                row = connection.execute(f'SELECT count(*) FROM "{schema}".chain_events').fetchone()
                events = int(row[0]) if row else 0
                connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        except psycopg.Error as exc:
            raise RuntimeError(f"Ponder's tables could not be read: {exc}") from None
    if events != expected_events:
        raise RuntimeError(f"Ponder indexed {events} of {expected_events} events")
    return PonderRun(events=events, indexing_s=ready - up, startup_s=up - started)


def wait_for(url: str, process: subprocess.Popen[bytes], started: float, timeout_s: float) -> float:
    """Poll `url` until it answers 200; the perf_counter time it did."""
    while time.perf_counter() - started < timeout_s:
        if process.poll() is not None:
            raise RuntimeError(f"Ponder exited with code {process.returncode}")
        if answers(url):
            return time.perf_counter()
        time.sleep(0.05)
    raise RuntimeError(f"Ponder did not answer {url} within {timeout_s:.0f} s")


def wait_for_rows(
    url: str,
    schema: str,
    expected: int,
    process: subprocess.Popen[bytes],
    started: float,
    timeout_s: float,
) -> float:
    """Poll Ponder's chain_events count until it holds `expected` rows; the time it did."""
    with psycopg.connect(url, autocommit=True) as connection:
        while time.perf_counter() - started < timeout_s:
            if process.poll() is not None:
                raise RuntimeError(f"Ponder exited with code {process.returncode}")
            row = connection.execute(f'SELECT count(*) FROM "{schema}".chain_events').fetchone()
            if row and int(row[0]) >= expected:
                return time.perf_counter()
            time.sleep(0.05)
    raise RuntimeError(f"Ponder did not index {expected} events within {timeout_s:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group we started, SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

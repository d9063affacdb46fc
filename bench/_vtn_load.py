"""The VTN under 1,000 polling VENs (`vtn_poll_p99_ms`, goal <= 200; `vtn_polls_per_s`).

Setup (not timed): a migrated scratch schema, 1,000 VENs with client certificates from a
development CA, recorded and already registered; the VTN (`python -m backend.openadr`, TLS 1.3
with client certificates) as its own process. The load generator is raw aiohttp, one
connection per VEN with its own certificate (1,000 openleadr clients with their schedulers
would measure the clients): each VEN sends an oadrPoll signed like openleadr's VEN signs it
(XML signature with a fresh ReplayProtect nonce; the VTN verifies it) every 10 s, starts spread
evenly over the period.

- `vtn_poll_p99_ms` (and p50): round trip of a poll (signing excluded), after one warm-up period
  in which every VEN has connected, over `GRIDLEDGER_BENCH_VTN_SECONDS` (30) of polling;
- `vtn_polls_per_s`: polls answered per second by 32 VENs polling back to back for 8 s
  (the VTN's capacity; 1,000 VENs every 10 s need 100);
- the same two figures against the floor (bench/_vtn_floor.py: the same TLS, a fixed answer,
  no parsing, signature check or database) in the same run, and the ratios VTN / floor.

`run(vens_count, seconds)` runs it small (tests/bench/test_vtn_load.py: 5 VENs, 3 s, the poll
period and the burst shortened to 3 s as well).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from openleadr.messaging import create_message
from sqlmodel import Session

from backend.accounts.models import Account
from backend.chain.anvil import free_port
from backend.core.config import PROJECT_ROOT, Settings
from backend.core.db import make_engine
from backend.core.dev_ca import ensure_server_files, issue_client_certificate
from backend.core.processes import stop_process
from backend.core.tls import MINIMUM_VERSION
from backend.openadr.models import Ven
from bench._cpu import cpu_s_of
from bench._database import scratch_schema

VENS = int(os.environ.get("GRIDLEDGER_BENCH_VTN_VENS", "1000"))
PERIOD_S = 10.0
MEASURE_S = float(os.environ.get("GRIDLEDGER_BENCH_VTN_SECONDS", "30"))
BURST_VENS, BURST_S = 32, 8.0
PATH = "/OpenADR2/Simple/2.0b/OadrPoll"


@dataclass(frozen=True)
class Phases:
    """How long each phase runs: warm-up and poll period, measured polling, burst."""

    period_s: float = PERIOD_S
    measure_s: float = MEASURE_S
    burst_s: float = BURST_S

    @classmethod
    def for_seconds(cls, seconds: float) -> Phases:
        """`seconds` of measured polling; a short run (tests) shortens the period (the VTN is
        told the same interval) and the burst to match, so the whole run stays short."""
        return cls(min(PERIOD_S, seconds), seconds, min(BURST_S, seconds))


@dataclass
class BenchVen:
    ven_id: str
    cert: bytes
    key: bytes
    context: ssl.SSLContext

    def poll(self) -> bytes:
        return create_message("oadrPoll", ven_id=self.ven_id, cert=self.cert, key=self.key).encode()


def make_vens(engine: Any, tls_dir: Path, ca_file: Path, n: int) -> list[BenchVen]:
    """`n` registered VENs of one account, their certificates written for `load_cert_chain`."""
    files = tls_dir / "vens"
    files.mkdir(parents=True, exist_ok=True)
    from backend.core.dev_ca import ensure_ca

    ca = ensure_ca(tls_dir)
    vens: list[BenchVen] = []
    with Session(engine) as session:
        account = Account(email="vens@bench.example.org", address="0x" + "ee" * 20)
        session.add(account)
        session.flush()
        for i in range(n):
            ven_id = f"ven-{i:04d}"
            issued = issue_client_certificate(ca, ven_id)
            cert, key = issued.cert_pem(), issued.key_pem()
            (files / f"{ven_id}.pem").write_bytes(cert)
            (files / f"{ven_id}.key").write_bytes(key)
            context = ssl.create_default_context(cafile=str(ca_file))
            context.minimum_version = MINIMUM_VERSION
            context.load_cert_chain(files / f"{ven_id}.pem", files / f"{ven_id}.key")
            session.add(
                Ven(
                    ven_id=ven_id,
                    ven_name=ven_id,
                    account_id=account.id,
                    cert_fingerprint=issued.fingerprint,
                    registration_id=uuid.uuid4().hex,
                )
            )
            vens.append(BenchVen(ven_id, cert, key, context))
        session.commit()
    return vens


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port}")


class PollRefused(Exception):
    """The VTN answered, but not with responseCode 200 (its description says why)."""


async def post(session: aiohttp.ClientSession, url: str, ven: BenchVen) -> float:
    body = ven.poll()
    started = time.perf_counter()
    async with session.post(
        url, data=body, headers={"Content-Type": "application/xml"}, ssl=ven.context
    ) as response:
        text = await response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200 or b"<ei:responseCode>200<" not in text:
        found = re.search(rb"<ei:responseDescription>(.*?)</", text)
        raise PollRefused(f"{response.status} {found.group(1)[:120] if found else text[:120]!r}")
    return elapsed


async def scheduled(base_url: str, vens: list[BenchVen], phases: Phases) -> tuple[list[float], int]:
    """Every VEN polls every period (starts spread over one period); the latencies after the
    warm-up period and how many polls failed. A poll refused because the VTN fell more than
    openleadr's 5 s replay window behind counts as failed (its latency is not a figure)."""
    url = base_url + PATH
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    start = loop.time()
    measure_from = start + phases.period_s
    end = measure_from + phases.measure_s
    errors: list[BaseException] = []

    async def one(i: int, ven: BenchVen) -> None:
        connector = aiohttp.TCPConnector(limit=1, ssl=ven.context)
        async with aiohttp.ClientSession(connector=connector) as session:
            moment = start + phases.period_s * i / len(vens)
            while moment < end:
                await asyncio.sleep(max(moment - loop.time(), 0))
                try:
                    elapsed = await post(session, url, ven)
                except (aiohttp.ClientError, PollRefused) as exc:
                    errors.append(exc)
                    elapsed = None
                if elapsed is not None and moment >= measure_from:
                    latencies.append(elapsed)
                moment += phases.period_s

    await asyncio.gather(*(one(i, v) for i, v in enumerate(vens)))
    if errors:
        print(f"{len(errors)} polls failed, first: {errors[0]!r}", file=sys.stderr)
    return latencies, len(errors)


async def burst(base_url: str, vens: list[BenchVen], burst_s: float) -> float:
    """BURST_VENS VENs polling back to back for `burst_s`: polls answered per second."""
    url = base_url + PATH
    count = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + burst_s

    async def one(ven: BenchVen) -> None:
        nonlocal count
        connector = aiohttp.TCPConnector(limit=1, ssl=ven.context)
        async with aiohttp.ClientSession(connector=connector) as session:
            with contextlib.suppress(PollRefused):
                await post(session, url, ven)  # connected before the clock runs
            while loop.time() < end:
                with contextlib.suppress(PollRefused):  # answered, too late: not counted
                    await post(session, url, ven)
                    count += 1

    started = loop.time()
    await asyncio.gather(*(one(v) for v in vens[:BURST_VENS]))
    return count / (loop.time() - started)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Figures:
    p50_ms: float
    p99_ms: float
    polls_per_s: float
    failed: int
    cpu_ms_per_poll: float  # the server's CPU over the scheduled phase, per poll


def measure(base_url: str, vens: list[BenchVen], server_pid: int, phases: Phases) -> Figures:
    """The scheduled phase (p50, p99 in ms, inf when no poll succeeded), then the burst."""
    cpu_before = cpu_s_of(server_pid)
    latencies, failed = asyncio.run(scheduled(base_url, vens, phases))
    polls = (phases.period_s + phases.measure_s) / phases.period_s * len(vens)
    cpu_ms = (cpu_s_of(server_pid) - cpu_before) * 1000 / polls
    rate = asyncio.run(burst(base_url, vens, phases.burst_s))
    if not latencies:
        return Figures(float("inf"), float("inf"), rate, failed, cpu_ms)
    p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
    return Figures(p50, p99, rate, failed, cpu_ms)


def server_env(settings: Settings, period_s: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDLEDGER_")}
    env |= {
        "GRIDLEDGER_DATABASE_URL": settings.database_url,
        "GRIDLEDGER_DATA_DIR": str(settings.data_dir),
        "GRIDLEDGER_TLS": "dev",
        "GRIDLEDGER_VTN_PORT": str(settings.vtn_port),
        "GRIDLEDGER_VTN_POLL_INTERVAL_S": str(period_s),
        "GRIDLEDGER_SIMULATE": "false",
    }
    return env


def run(vens_count: int = VENS, seconds: float = MEASURE_S) -> Iterator[dict[str, Any]]:
    """The figures for `vens_count` VENs and `seconds` of measured polling (defaults from
    GRIDLEDGER_BENCH_VTN_VENS and GRIDLEDGER_BENCH_VTN_SECONDS: 1,000 VENs, 30 s)."""
    phases = Phases.for_seconds(seconds)
    with scratch_schema() as url, tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        files = ensure_server_files(data_dir / "tls")
        settings = Settings(
            _env_file=None, database_url=url, data_dir=data_dir, tls="dev", vtn_port=free_port()
        )
        engine = make_engine(url)
        vens = make_vens(engine, data_dir / "tls", files.ca_file, vens_count)
        engine.dispose()
        floor_port = free_port()
        log = open(data_dir / "servers.log", "ab")  # noqa: SIM115 - closed below
        vtn = subprocess.Popen(
            [sys.executable, "-m", "backend.openadr"],
            cwd=PROJECT_ROOT,
            env=server_env(settings, phases.period_s),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        floor = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench._vtn_floor",
                str(floor_port),
                str(files.cert_file),
                str(files.key_file),
                str(files.ca_file),
            ],
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(settings.vtn_port, vtn)
            wait_for_port(floor_port, floor)
            ours = measure(f"https://127.0.0.1:{settings.vtn_port}", vens, vtn.pid, phases)
            floor_figures = measure(f"https://127.0.0.1:{floor_port}", vens, floor.pid, phases)
        finally:
            stop_process(vtn)
            stop_process(floor)
            log.close()
    yield {"metric": "vtn_poll_p99_ms", "value": round(ours.p99_ms, 1), "unit": "ms"}
    yield {"metric": "vtn_poll_p50_ms", "value": round(ours.p50_ms, 1), "unit": "ms"}
    yield {"metric": "vtn_polls_per_s", "value": round(ours.polls_per_s, 1), "unit": "polls/s"}
    yield {"metric": "vtn_polls_failed", "value": ours.failed, "unit": "polls"}
    yield {"metric": "vtn_cpu_ms_per_poll", "value": round(ours.cpu_ms_per_poll, 2), "unit": "ms"}
    yield {"metric": "floor_poll_p99_ms", "value": round(floor_figures.p99_ms, 1), "unit": "ms"}
    yield {
        "metric": "floor_polls_per_s",
        "value": round(floor_figures.polls_per_s, 1),
        "unit": "polls/s",
    }
    yield {
        "metric": "floor_cpu_ms_per_poll",
        "value": round(floor_figures.cpu_ms_per_poll, 2),
        "unit": "ms",
    }
    yield {
        "metric": "vtn_p99_ratio_vs_floor",
        "value": round(ours.p99_ms / floor_figures.p99_ms, 1),
        "unit": "x",
    }
    yield {
        "metric": "vtn_polls_per_s_ratio_vs_floor",
        "value": round(ours.polls_per_s / floor_figures.polls_per_s, 2),
        "unit": "x",
    }
    yield {
        "metric": "vtn_cpu_per_poll_ratio_vs_floor",
        "value": round(ours.cpu_ms_per_poll / floor_figures.cpu_ms_per_poll, 1),
        "unit": "x",
    }

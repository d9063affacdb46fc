"""HTTP latency with 1,000 idle WebSockets open, and during a burst of 1,000 subscriptions.

One uvicorn worker (the API as configured, public read cache off so every read runs its SQL).
wrk sends `GET /health` and a market read (`/v1/trading/trades`) on 4 connections: first with
no socket open (the baseline, same run), then with 1,000 idle sockets on `/v1/ws`, then while
every socket subscribes to `trades` and `recs` and 100 of them to a market (a snapshot each).
Before the process-wide fan-out (backend/api/ws_hub.py) 30 idle sockets made `/health` time out.
Figures: p99 in ms per phase and its ratio to the baseline, for `/health` (`http_p99_ms_no_ws`,
`http_p99_ms_idle_1000_ws`, `http_p99_ms_subscribe_burst_1000_ws`; no indexer runs here, so it
answers 503, counted in `errors`: the latency is the point) and the market read (the same names
with `_market_read`); and how long opening the sockets and the subscription burst took.
"""

from __future__ import annotations

import asyncio
import json
import resource
import threading
import time
from collections.abc import Iterator
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench._api import api_environment, serve
from bench._wrk import WrkResult, run_wrk

SOCKETS, MARKET_SUBSCRIBERS, CONNECTIONS, DURATION_S = 1_000, 100, 4, 4.0
PATHS = {"": "/health", "_market_read": "/v1/trading/trades?limit=100"}


def measure(base: str, duration_s: float = DURATION_S) -> dict[str, WrkResult]:
    return {
        name: run_wrk(base + path, connections=CONNECTIONS, duration_s=duration_s)
        for name, path in PATHS.items()
    }


async def open_sockets(url: str) -> list[ClientConnection]:
    sockets: list[ClientConnection] = []
    for start in range(0, SOCKETS, 100):
        sockets += await asyncio.gather(
            *(connect(url, open_timeout=30) for _ in range(start, min(start + 100, SOCKETS)))
        )
    return sockets


async def subscribe_all(sockets: list[ClientConnection], market_id: str) -> None:
    async def one(index: int, socket: ClientConnection) -> None:
        channels = ["trades", "recs"]
        if index < MARKET_SUBSCRIBERS:
            channels.append(f"trading.market.{market_id}")
        await socket.send(json.dumps({"action": "subscribe", "channels": channels}))
        for _ in range(2 if index < MARKET_SUBSCRIBERS else 1):  # the ack (and the snapshot)
            await socket.recv()

    await asyncio.gather(*(one(i, s) for i, s in enumerate(sockets)))


def run() -> Iterator[dict[str, Any]]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8 * SOCKETS)), hard))
    with (
        api_environment() as (settings, _),
        serve(
            "backend.main:app",
            settings,
            public_cache_ttl_s="0",
            ws_max_connections_per_ip=str(SOCKETS + 100),
        ) as base,
    ):
        url = base.replace("http", "ws", 1) + "/v1/ws"
        market_id = f"energy-{2**31 // 900 * 900}"
        measure(base, duration_s=1)  # warm-up, not counted
        phases: dict[str, dict[str, WrkResult]] = {"no_ws": measure(base)}
        took: dict[str, float] = {}

        async def scenario() -> None:
            started = time.perf_counter()
            sockets = await open_sockets(url)
            took["ws_connect_1000_s"] = time.perf_counter() - started
            phases["idle_1000_ws"] = await asyncio.to_thread(measure, base)
            loaded: dict[str, dict[str, WrkResult]] = {}
            meter = threading.Thread(target=lambda: loaded.update(burst=measure(base)))
            meter.start()
            await asyncio.sleep(0.5)  # wrk is running
            started = time.perf_counter()
            await subscribe_all(sockets, market_id)
            took["subscribe_burst_1000_ws_s"] = time.perf_counter() - started
            await asyncio.to_thread(meter.join)
            phases["subscribe_burst_1000_ws"] = loaded["burst"]
            await asyncio.gather(*(s.close() for s in sockets))

        asyncio.run(scenario())
    for suffix in PATHS:
        baseline = phases["no_ws"][suffix]
        yield {
            "metric": f"http_p99_ms_no_ws{suffix}",
            "value": baseline["p99_ms"],
            "unit": "ms",
            "rps": baseline["rps"],
            "errors": baseline["errors"],
        }
        for phase in ("idle_1000_ws", "subscribe_burst_1000_ws"):
            figures = phases[phase][suffix]
            yield {
                "metric": f"http_p99_ms_{phase}{suffix}",
                "value": figures["p99_ms"],
                "unit": "ms",
                "ratio_to_no_ws": round(figures["p99_ms"] / max(baseline["p99_ms"], 0.01), 2),
                "rps": figures["rps"],
                "errors": figures["errors"],
            }
    for metric, seconds in took.items():
        yield {"metric": metric, "value": round(seconds, 2), "unit": "s", "sockets": SOCKETS}

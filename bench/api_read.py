"""GET /v1/trading/orderbook and /v1/trading/trades under 64 concurrent connections (wrk).

Target: >= 10,000 req/s with p99 <= 100 ms on a 2-core machine; wrk shares the two
cores with the server. One uvicorn worker each for: the API as configured (public reads from
the per-worker read cache, backend/api/read_cache.py), the same API with the cache off
(`_uncached`: every request runs the route and its SQL), and the baseline — a plain
FastAPI/SQLModel app serving the same reads (bench/_baseline_app.py). Ratios are to the
baseline. `_2_workers`: the API with GRIDLEDGER_API_WORKERS=2, one per core. Each load is
preceded by a one-second warm-up that is not counted.

The uncached trade list is answered before routing too (backend/api/fast_trades.py: one
statement, JSON from the rows, identical requests in flight sharing it). The uncached order
book (backend/api/fast_book.py) is also measured without shared reads
(`orderbook_uncached_unshared_*`: one statement per request) and with 2 worker processes
(`orderbook_uncached_rps_2w`: what a second core or machine buys). The machine's floor:
`orderbook_floor_rps` (and `_2w`) — the same load on a bare ASGI app under the same uvicorn
answering the order book's bytes with no framework and no database (bench/_floor_app.py);
`floor_ratio` is ours ÷ floor.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session

from backend.accounts.models import Account
from backend.core.db import make_engine
from backend.market.models import SignedOrder
from bench._api import api_environment, serve
from bench._wrk import WrkResult, run_wrk
from indexer.models import Trade, TradeStatus

ORDERS, TRADES, CONNECTIONS, DURATION_S = 400, 2_000, 64, 5.0


def seed(database_url: str, start: int) -> None:
    engine = make_engine(database_url)
    with Session(engine) as session:
        account = Account(email="bench@example.org", address="0x" + "be" * 20)
        session.add(account)
        session.flush()
        for i in range(ORDERS):
            side = i % 2
            session.add(
                SignedOrder(
                    order_hash="0x" + uuid.uuid4().hex * 2,
                    account_id=account.id,
                    custodial=True,
                    maker="0x" + f"{i:040x}",
                    side=side,
                    product=0,
                    asset_id=0,
                    meter_id="0x" + "11" * 32,
                    quantity_wh=1_000 + i,
                    price=(90_000 if side else 110_000) + (i % 40) * 100 * (-1 if side else 1),
                    delivery_start=start,
                    delivery_end=start + 900,
                    expiry=2**40,
                    nonce=0,
                    salt=str(i),
                    signature="0x" + "00" * 65,
                )
            )
        for i in range(1, TRADES + 1):
            session.add(
                Trade(
                    trade_id=i,
                    chain_id=31337,
                    product="energy",
                    status=TradeStatus.OPEN,
                    seller="0x" + "aa" * 20,
                    buyer="0x" + "bb" * 20,
                    quantity_wh=1_000,
                    price=100_000 + i,
                    payment=100_000,
                    delivery_start=start,
                    delivery_end=start + 900,
                    sell_order_hash="0x" + "01" * 32,
                    buy_order_hash="0x" + "02" * 32,
                    created_tx="0x" + "03" * 32,
                    created_block=i,
                    created_at=i,
                )
            )
        session.commit()
    engine.dispose()


def measure(base: str, paths: dict[str, str]) -> dict[str, WrkResult]:
    results = {}
    for name, path in paths.items():
        # warm-up: imports, connection pool, first query plans
        run_wrk(base + path, connections=CONNECTIONS, duration_s=1)
        results[name] = run_wrk(base + path, connections=CONNECTIONS, duration_s=DURATION_S)
    return results


def run() -> Iterator[dict[str, Any]]:
    with api_environment() as (settings, _):
        start = 2**31 // 900 * 900  # far in the future: the market stays open
        seed(settings.database_url, start)
        ours = {
            "orderbook": f"/v1/trading/orderbook?market_id=energy-{start}",
            "trades": "/v1/trading/trades?limit=100",
        }
        with serve("backend.main:app", settings) as base:
            cached = measure(base, ours)
        with serve("backend.main:app", settings, workers=2) as base:
            two_workers = measure(base, ours)
        book = {"orderbook": ours["orderbook"]}
        with serve("backend.main:app", settings, public_cache_ttl_s="0") as base:
            uncached = measure(base, ours)
            body = httpx.get(base + ours["orderbook"]).content
        with serve("backend.main:app", settings, workers=2, public_cache_ttl_s="0") as base:
            uncached_2w = measure(base, book)["orderbook"]
        with serve(
            "backend.main:app", settings, public_cache_ttl_s="0", orderbook_share_reads="false"
        ) as base:
            unshared = measure(base, book)["orderbook"]
        with tempfile.TemporaryDirectory() as tmp:
            body_file = Path(tmp) / "orderbook.json"
            body_file.write_bytes(body)
            floor_body = str(body_file)
            with serve("bench._floor_app:app", settings, bench_floor_body=floor_body) as base:
                floor = measure(base, book)["orderbook"]
            with serve(
                "bench._floor_app:app", settings, workers=2, bench_floor_body=floor_body
            ) as base:
                floor_2w = measure(base, book)["orderbook"]
        with serve("bench._baseline_app:app", settings) as base:
            baseline = measure(
                base, {"orderbook": f"/orderbook?market_id=energy-{start}", "trades": "/trades"}
            )
    for name in ("orderbook", "trades"):
        figures, base_rps = cached[name], max(baseline[name]["rps"], 1)
        yield {
            "metric": f"{name}_rps",
            "value": figures["rps"],
            "unit": "req/s",
            "target": 10_000,
            "ratio_to_baseline": round(figures["rps"] / base_rps, 2),
            "connections": CONNECTIONS,
            "errors": figures["errors"],
            "requests": figures["requests"],
        }
        yield {"metric": f"{name}_p50_ms", "value": figures["p50_ms"], "unit": "ms"}
        yield {"metric": f"{name}_p99_ms", "value": figures["p99_ms"], "unit": "ms", "target": 100}
        yield {
            "metric": f"{name}_rps_2_workers",
            "value": two_workers[name]["rps"],
            "unit": "req/s",
            "p99_ms": two_workers[name]["p99_ms"],
            "errors": two_workers[name]["errors"],
        }
        yield {
            "metric": f"{name}_uncached_rps",
            "value": uncached[name]["rps"],
            "unit": "req/s",
            "ratio_to_baseline": round(uncached[name]["rps"] / base_rps, 2),
            "p99_ms": uncached[name]["p99_ms"],
            "errors": uncached[name]["errors"],
        }
        yield {"metric": f"{name}_uncached_p99_ms", "value": uncached[name]["p99_ms"], "unit": "ms"}
        yield {
            "metric": f"baseline_{name}_rps",
            "value": baseline[name]["rps"],
            "unit": "req/s",
            "p99_ms": baseline[name]["p99_ms"],
            "errors": baseline[name]["errors"],
        }
    yield from book_figures(uncached["orderbook"], uncached_2w, unshared, floor, floor_2w)


def book_figures(
    uncached: WrkResult,
    uncached_2w: WrkResult,
    unshared: WrkResult,
    floor: WrkResult,
    floor_2w: WrkResult,
) -> Iterator[dict[str, Any]]:
    """The uncached order book against the machine's floor, with 1 and 2 workers."""
    yield {
        "metric": "orderbook_uncached_rps_2w",
        "value": uncached_2w["rps"],
        "unit": "req/s",
        "p99_ms": uncached_2w["p99_ms"],
        "errors": uncached_2w["errors"],
        "ratio_to_1w": round(uncached_2w["rps"] / max(uncached["rps"], 1), 2),
    }
    yield {"metric": "orderbook_uncached_p99_ms_2w", "value": uncached_2w["p99_ms"], "unit": "ms"}
    yield {
        "metric": "orderbook_uncached_unshared_rps",
        "value": unshared["rps"],
        "unit": "req/s",
        "p99_ms": unshared["p99_ms"],
        "errors": unshared["errors"],
    }
    yield {
        "metric": "orderbook_uncached_unshared_p99_ms",
        "value": unshared["p99_ms"],
        "unit": "ms",
    }
    for suffix, ours, bare in (("", uncached, floor), ("_2w", uncached_2w, floor_2w)):
        yield {
            "metric": f"orderbook_floor_rps{suffix}",
            "value": bare["rps"],
            "unit": "req/s",
            "p99_ms": bare["p99_ms"],
            "errors": bare["errors"],
            "floor_ratio": round(ours["rps"] / max(bare["rps"], 1), 2),
        }

"""GET /v1/trading/orderbook and /v1/trading/trades under 64 concurrent connections.

Target (issue 5): >= 10,000 req/s with p99 <= 100 ms on a 2-core machine. The load generator
(wrk) shares the two cores with the server, so absolute figures are a lower bound;
the baseline (a plain FastAPI/SQLModel app serving the same reads, bench/_baseline_app.py)
runs under identical conditions and the ratio is the comparable figure.
"""
from __future__ import annotations

import uuid

from sqlmodel import Session

from backend.accounts.models import Account
from backend.core.db import make_engine
from backend.market.models import SignedOrder
from bench._api import api_environment, serve
from bench._wrk import run_wrk
from indexer.models import Trade

ORDERS, TRADES, CONNECTIONS, DURATION_S = 400, 2_000, 64, 5.0


def seed(database_url: str, start: int) -> None:
    engine = make_engine(database_url)
    with Session(engine) as session:
        account = Account(email="bench@example.org", address="0x" + "be" * 20)
        session.add(account)
        session.flush()
        for i in range(ORDERS):
            side = i % 2
            session.add(SignedOrder(
                order_hash="0x" + uuid.uuid4().hex * 2, account_id=account.id, custodial=True,
                maker="0x" + f"{i:040x}", side=side, product=0, asset_id=0, meter_id="0x" + "11" * 32,
                quantity_wh=1_000 + i, price=(90_000 if side else 110_000) + (i % 40) * 100 * (-1 if side else 1),
                delivery_start=start, delivery_end=start + 900, expiry=2**40, nonce=0, salt=str(i),
                signature="0x" + "00" * 65))
        for i in range(1, TRADES + 1):
            session.add(Trade(trade_id=i, chain_id=31337, product="energy", status="open", seller="0x" + "aa" * 20,
                              buyer="0x" + "bb" * 20, quantity_wh=1_000, price=100_000 + i, payment=100_000,
                              delivery_start=start, delivery_end=start + 900, sell_order_hash="0x" + "01" * 32,
                              buy_order_hash="0x" + "02" * 32, created_tx="0x" + "03" * 32, created_block=i,
                              created_at=i))
        session.commit()
    engine.dispose()


def run():
    with api_environment() as (settings, _):
        start = 2**31 // 900 * 900  # far in the future: the market stays open
        seed(settings.database_url, start)
        results = {}
        with serve("backend.main:app", settings) as base:
            results["orderbook"] = run_wrk(f"{base}/v1/trading/orderbook?market_id=energy-{start}", CONNECTIONS, DURATION_S)
            results["trades"] = run_wrk(f"{base}/v1/trading/trades?limit=100", CONNECTIONS, DURATION_S)
        with serve("bench._baseline_app:app", settings) as base:
            results["baseline_orderbook"] = run_wrk(f"{base}/orderbook?market_id=energy-{start}", CONNECTIONS, DURATION_S)
            results["baseline_trades"] = run_wrk(f"{base}/trades", CONNECTIONS, DURATION_S)
    ob, tr, base_ob, base_tr = (results[k] for k in ("orderbook", "trades", "baseline_orderbook", "baseline_trades"))
    yield {"metric": "orderbook_rps", "value": ob["rps"], "unit": "req/s", "target": 10_000,
           "ratio_to_baseline": round(ob["rps"] / max(base_ob["rps"], 1), 3), "connections": CONNECTIONS,
           "errors": ob["errors"], "requests": ob["requests"]}
    yield {"metric": "orderbook_p50_ms", "value": ob["p50_ms"], "unit": "ms"}
    yield {"metric": "orderbook_p99_ms", "value": ob["p99_ms"], "unit": "ms", "target": 100}
    yield {"metric": "trades_rps", "value": tr["rps"], "unit": "req/s", "target": 10_000,
           "ratio_to_baseline": round(tr["rps"] / max(base_tr["rps"], 1), 3), "connections": CONNECTIONS,
           "errors": tr["errors"], "requests": tr["requests"]}
    yield {"metric": "trades_p50_ms", "value": tr["p50_ms"], "unit": "ms"}
    yield {"metric": "trades_p99_ms", "value": tr["p99_ms"], "unit": "ms", "target": 100}
    yield {"metric": "baseline_orderbook_rps", "value": base_ob["rps"], "unit": "req/s",
           "p99_ms": base_ob["p99_ms"]}
    yield {"metric": "baseline_trades_rps", "value": base_tr["rps"], "unit": "req/s", "p99_ms": base_tr["p99_ms"]}

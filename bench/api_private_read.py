"""GET /v1/trading/orders ("my orders"), GET /v1/energy/balance, GET /v1/trading/history and
GET /v1/energy/transfers under 64 connections (wrk), each request as one of many accounts (its
own API key, in turn); and GET /v1/energy/consumption (`meter_series`: a day of 15-minute
readings, hourly) of one account's meter with that account's key — the URL names the meter.

Every request authenticates (API key lookup, account row, rate-limit counter in Redis), reads
chain time (at most 1 s old) and runs its SQL: these are per-caller and never cached. My orders
and my balance are answered before routing (backend/api/fast_private.py), with the same
checks on every request.
`ACCOUNTS` accounts hold `ORDERS_PER_ACCOUNT` orders each (100 per page) and a few open energy
trades as buyer and seller, with mirrored token and market balances.

Baseline in the same run: a plain FastAPI/SQLModel app doing the same reads after one API key
lookup (bench/_baseline_app.py: no scopes, expiry, rate limit or chain clock); history and
transfers share one baseline, the caller's newest 100 trades as stored; the meter series' is
the owner check and the day's readings summed per hour. `peak_rss_mb`:
the API process's peak resident set after both loads. Each load follows a one-second warm-up
that is not counted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import insert
from sqlmodel import SQLModel

from backend.accounts.models import Account, ApiKey, Scope
from backend.accounts.security import hash_api_key
from backend.core.db import make_engine, table_of
from backend.market.models import SignedOrder
from backend.meters.models import Meter, MeterReading
from bench._api import api_environment, peak_rss_mb, serve_process
from bench._wrk import WrkResult, run_wrk
from indexer.models import MarketBalance, TokenBalance, Trade, TradeStatus

ACCOUNTS, ORDERS_PER_ACCOUNT, TRADES_PER_ACCOUNT = 200, 150, 12
CONNECTIONS, DURATION_S = 64, 5.0
BIG = 2**60  # balances above 2^53: served as decimal strings
DAY = 1_767_225_600  # 2026-01-01T00:00Z: the day of readings each meter holds
SERIES = "start=2026-01-01T00:00:00Z&end=2026-01-02T00:00:00Z"


def api_key(i: int) -> str:
    return f"glk_bench_{i:06d}_{uuid.UUID(int=i).hex}"


def address(i: int) -> str:
    return "0x" + f"{i + 1:040x}"


def meter_of(i: int) -> str:
    return "0x" + f"{i + 1:064x}"


def columns(model: type[SQLModel], values: dict[str, Any]) -> dict[str, Any]:
    """`values` with the model's defaults filled in (Core inserts skip `default_factory`)."""
    row = model(**values)
    return {
        c.name: getattr(row, c.name) for c in table_of(model).c if getattr(row, c.name) is not None
    }


def seed(database_url: str, start: int) -> None:
    """Accounts, their read-only API keys, orders, trades and mirrored balances (Core inserts)."""
    engine = make_engine(database_url)
    accounts, keys, orders, trades, tokens, markets = [], [], [], [], [], []
    meters, readings = [], []
    for i in range(ACCOUNTS):
        account_id = uuid.uuid4()
        accounts.append(
            {
                "id": account_id,
                "email": f"bench{i}@example.org",
                "address": address(i),
                "roles": ["participant"],
            }
        )
        keys.append(
            {
                "id": uuid.uuid4(),
                "account_id": account_id,
                "name": "bench",
                "prefix": api_key(i)[:12],
                "secret_hash": hash_api_key(api_key(i)),
                "scopes": [Scope.READ.value, Scope.METER_DATA.value],
            }
        )
        for j in range(ORDERS_PER_ACCOUNT):
            side = j % 2
            orders.append(
                {
                    "order_hash": "0x" + uuid.uuid4().hex * 2,
                    "account_id": account_id,
                    "custodial": True,
                    "maker": address(i),
                    "side": side,
                    "product": 0,
                    "asset_id": 0,
                    "meter_id": "0x" + "11" * 32,
                    "quantity_wh": 1_000 + j,
                    "price": 100_000 + j,
                    "delivery_start": start + 900 * (j % 8),
                    "delivery_end": start + 900 * (j % 8 + 1),
                    "expiry": 2**40,
                    "nonce": 0,
                    "salt": str(2**63 + j),
                    "signature": "0x" + "00" * 65,
                }
            )
        meters.append(
            {
                "meter_id": meter_of(i),
                "name": f"bench-meter-{i}",
                "owner_id": account_id,
                "capacity_w": 10_000,
            }
        )
        for k in range(96):
            readings.append(
                {
                    "meter_id": meter_of(i),
                    "interval_start": DAY + 900 * k,
                    "import_wh": 100 + k,
                    "export_wh": k,
                    "source": "bulk",
                    "verified": k % 2 == 0,
                }
            )
        tokens.append({"account": address(i), "balance": BIG + i, "block_number": 1})
        markets.append(
            {"account": address(i), "withdrawable": BIG + i, "locked": 10**6, "block_number": 1}
        )
    for t in range(ACCOUNTS * TRADES_PER_ACCOUNT // 2):
        seller, buyer = t % ACCOUNTS, (t + 1) % ACCOUNTS
        trades.append(
            {
                "trade_id": t + 1,
                "chain_id": 31337,
                "product": "energy",
                "status": TradeStatus.OPEN,
                "seller": address(seller),
                "buyer": address(buyer),
                "quantity_wh": 1_000 + t,
                "price": 100_000,
                "payment": 100_000 + t,
                "delivery_start": start + 900 * (t % 4),
                "delivery_end": start + 900 * (t % 4 + 1),
                "sell_order_hash": "0x" + "01" * 32,
                "buy_order_hash": "0x" + "02" * 32,
                "created_tx": "0x" + "03" * 32,
                "created_block": t + 1,
                "created_at": t + 1,
            }
        )
    with engine.begin() as connection:
        for model, values in (
            (Account, accounts),
            (ApiKey, keys),
            (SignedOrder, orders),
            (Trade, trades),
            (TokenBalance, tokens),
            (MarketBalance, markets),
            (Meter, meters),
            (MeterReading, readings),
        ):
            connection.execute(insert(table_of(model)), [columns(model, v) for v in values])
    engine.dispose()


def load(url: str, accounts: int = ACCOUNTS) -> WrkResult:
    keys = ("X-API-Key", [api_key(i) for i in range(accounts)])
    run_wrk(url, connections=CONNECTIONS, duration_s=1, rotate=keys)  # warm-up
    return run_wrk(url, connections=CONNECTIONS, duration_s=DURATION_S, rotate=keys)


def run() -> Iterator[dict[str, Any]]:
    with api_environment() as (settings, _):
        start = 2**31 // 900 * 900  # far in the future: the orders stay open
        seed(settings.database_url, start)
        with serve_process("backend.main:app", settings) as (base, process):
            ours = {
                "my_orders": load(f"{base}/v1/trading/orders?limit=100"),
                "balance": load(f"{base}/v1/energy/balance"),
                "history": load(f"{base}/v1/trading/history?limit=100"),
                "transfers": load(f"{base}/v1/energy/transfers?limit=100"),
                "meter_series": load(
                    f"{base}/v1/energy/consumption?meterId={meter_of(0)}&{SERIES}", accounts=1
                ),
            }
            rss = peak_rss_mb(process)
        with serve_process("bench._baseline_app:app", settings) as (base, process):
            baseline = {
                "my_orders": load(f"{base}/my-orders"),
                "balance": load(f"{base}/balance"),
                "history": load(f"{base}/history"),
                "meter_series": load(f"{base}/meter-series?meter_id={meter_of(0)}", accounts=1),
            }
            baseline["transfers"] = baseline["history"]
            baseline_rss = peak_rss_mb(process)
    for name in ("my_orders", "balance", "history", "transfers", "meter_series"):
        figures, base_figures = ours[name], baseline[name]
        yield {
            "metric": f"{name}_rps",
            "value": figures["rps"],
            "unit": "req/s",
            "ratio_to_baseline": round(figures["rps"] / max(base_figures["rps"], 1), 2),
            "connections": CONNECTIONS,
            "accounts": 1 if name == "meter_series" else ACCOUNTS,
            "errors": figures["errors"],
            "requests": figures["requests"],
        }
        yield {"metric": f"{name}_p50_ms", "value": figures["p50_ms"], "unit": "ms"}
        yield {"metric": f"{name}_p99_ms", "value": figures["p99_ms"], "unit": "ms"}
        yield {
            "metric": f"baseline_{name}_rps",
            "value": base_figures["rps"],
            "unit": "req/s",
            "p99_ms": base_figures["p99_ms"],
            "errors": base_figures["errors"],
        }
    yield {"metric": "peak_rss_mb", "value": rss, "unit": "MiB", "baseline": baseline_rss}

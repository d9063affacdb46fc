"""Settlement throughput on Anvil: trades reconciled against meter data and settled on chain
per second (`trades_per_s`, default 10,000 trades), through the worker's service
(`close_due_periods`: reconciliation, `tradeStatus` checks, write-ahead `settleBatch` of 250
trades, 4 batches in flight).

Baseline, same run and chain: the naive way, one `settle` transaction per trade (after the
same `tradeStatus` check), on a separate share of the trades.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select
from web3 import Web3
from web3.types import RPCEndpoint

from backend.accounts.models import Account
from backend.core.config import Settings
from backend.core.db import make_engine
from backend.market.orders import SELL, Order, default_meter_id, sign_order
from backend.meters.schemas import MeterCreate
from backend.meters.services import ingest_readings, register_meter
from backend.meters.validation import iso
from backend.settlement.chain import ChainContext
from backend.settlement.locks import FileLocks
from backend.settlement.services import close_due_periods, trade_tuple
from bench._database import scratch_schema
from bench._devnet import deployed_devnet
from indexer.base import Indexer, IndexerConfig
from indexer.models import Trade
from indexer.rpc import RpcClient
from scripts.workload import Workload

TRADES = int(os.environ.get("GRIDLEDGER_BENCH_TRADES", "10000"))
BASELINE_TRADES = int(os.environ.get("GRIDLEDGER_BENCH_BASELINE_TRADES", "300"))
# the metering data provider posting the bench's readings: its readings are verified
METERING_DATA_PROVIDER = "0x00000000000000000000000000000000000000da"
BATCH = int(os.environ.get("GRIDLEDGER_BENCH_SETTLE_BATCH", "250"))
DEPTH = int(os.environ.get("GRIDLEDGER_BENCH_SETTLE_DEPTH", "4"))  # batches in flight


def make_trades(w3: Web3, wl: Workload, count: int) -> None:
    """`count` signed fills delivering in one slot, sent with automine off and mined in blocks.
    Each seller's offer is drawn afresh every 500 fills and otherwise reused with a new salt."""
    market = wl.c.market
    nonces: dict[str, int] = {p.address: w3.eth.get_transaction_count(p.address) for p in wl.people}
    offer_template: dict[str, Order] = {}
    w3.provider.make_request(RPCEndpoint("anvil_setAutomine"), [False])
    for i in range(count):
        seller = wl.people[i % len(wl.people)]
        buyer = wl.people[(i + 1) % len(wl.people)]
        offer = (
            wl.order(seller, SELL, quantity=1_000 + i % 500)
            if i % 500 == 0 or i < len(wl.people)
            else offer_template[seller.address].replace(salt=i)
        )
        if i < len(wl.people) or i % 500 == 0:
            offer_template[seller.address] = offer
        signature = sign_order(offer, seller.key, wl.chain_id, market.address)
        fill = market.functions.fillOrder(
            offer.as_tuple(), signature, offer.quantityWh, default_meter_id(buyer.address)
        )
        raw = wl.signed_call(buyer, fill, nonce=nonces[buyer.address], gas=400_000)
        nonces[buyer.address] += 1
        w3.eth.send_raw_transaction(raw)
        if i % 100 == 99:
            w3.provider.make_request(RPCEndpoint("anvil_mine"), [1])
    w3.provider.make_request(RPCEndpoint("anvil_mine"), [1])
    w3.provider.make_request(RPCEndpoint("anvil_setAutomine"), [True])


def run(
    trades_count: int = TRADES,
    baseline_count: int = BASELINE_TRADES,
    batch: int = BATCH,
    depth: int = DEPTH,
) -> Iterator[dict[str, Any]]:
    with deployed_devnet(participants=4, anvil_args=("--gas-limit", "100000000")) as (
        node,
        w3,
        deployment,
        wl,
    ):
        started = time.perf_counter()
        make_trades(w3, wl, trades_count + baseline_count)
        setup_s = time.perf_counter() - started
        with scratch_schema() as url, tempfile.TemporaryDirectory() as data_dir:
            engine = make_engine(url)
            indexer = Indexer(
                engine, RpcClient(node.rpc_url), deployment, IndexerConfig(finality_depth=1)
            )
            while indexer.step():
                pass
            settings = Settings(
                _env_file=None,
                data_dir=Path(data_dir),
                rpc_url=node.rpc_url,
                database_url=url,
                settlement_batch_size=batch,
                settlement_pipeline_depth=depth,
                settlement_gate_delay_s=0,
            )
            ctx = ChainContext.from_settings(settings, deployment)
            with Session(engine, expire_on_commit=False) as session:
                trades = session.exec(
                    select(Trade).where(Trade.product == "energy").order_by(col(Trade.trade_id))
                ).all()
                for person in wl.people:
                    account = Account(address=person.address.lower())
                    session.add(account)
                    session.flush()
                    register_meter(
                        session,
                        account,
                        MeterCreate(name=f"meter:{person.address}", capacity_w=10**9),
                    )
            wl.advance(3 * 900 + 60)
            slots = {
                (t.seller_meter, t.delivery_start)
                for t in trades
                if t.delivery_start is not None  # energy trades always have one
            }
            with Session(engine) as session:
                ingest_readings(
                    session,
                    [{"meterId": m, "timestamp": iso(s), "exportWh": 900_000} for m, s in slots],
                    source="bench",
                    now=ctx.now(),
                    settings=settings,
                    # verified: only metered data a provider (or the meter) signed is paid
                    provider=METERING_DATA_PROVIDER,
                )
            yield {
                "metric": "trades",
                "value": len(trades),
                "unit": "trades",
                "setup_s": round(setup_s, 1),
            }

            # baseline: one settle transaction per trade, on the last BASELINE_TRADES trades
            baseline = trades[-baseline_count:]
            t0 = time.perf_counter()
            for trade in baseline:
                if wl.c.market.functions.tradeStatus(trade.trade_id).call() == 1:
                    wl.tx(
                        wl.settler,
                        wl.c.market.functions.settle(
                            trade_tuple(trade), trade.trade_id, trade.quantity_wh // 2
                        ),
                        gas=300_000,
                    )
            baseline_rate = len(baseline) / (time.perf_counter() - t0)

            locks = FileLocks(Path(data_dir) / "locks")
            t0 = time.perf_counter()
            with Session(engine) as session:
                reports = close_due_periods(session, ctx, locks, settings)
            ours_s = time.perf_counter() - t0
            settled = sum(r.settled for r in reports)
            closed = sum(r.already_closed for r in reports)
            ours = settled / ours_s
            if settled + closed != len(trades):
                # a bench that settles nothing must fail, not print 0 trades/s (it did once)
                raise RuntimeError(
                    f"{settled} settled + {closed} closed of {len(trades)} trades: {reports}"
                )
            engine.dispose()
        yield {
            "metric": "trades_per_s",
            "value": round(ours, 1),
            "unit": "trades/s",
            "settled": settled,
            "already_closed": closed,
            "batch": settings.settlement_batch_size,
            "pipeline_depth": settings.settlement_pipeline_depth,
            "seconds": round(ours_s, 2),
        }
        yield {
            "metric": "baseline_trades_per_s",
            "value": round(baseline_rate, 1),
            "unit": "trades/s",
            "trades": len(baseline),
        }
        yield {"metric": "ratio", "value": round(ours / baseline_rate, 1), "unit": "x"}

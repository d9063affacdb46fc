"""Live lag: milliseconds from a block being mined (1 s block time) to its rows being queryable.

A watcher polls the node every 2 ms for new blocks, another polls PostgreSQL for the
indexer's cursor; the lag of block n is (first seen in SQL) − (first seen at the node).
The baseline, in the same run, is the lag when the indexer only polls once a second.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from backend.chain.anvil import AnvilNode
from backend.chain.deployment import Deployment
from backend.core.db import make_engine
from bench._database import scratch_schema
from bench._devnet import deployed_devnet
from indexer.base import Indexer, IndexerConfig
from indexer.models import IndexerCursor
from indexer.rpc import RpcClient
from scripts.workload import Workload

BLOCKS = int(os.environ.get("GRIDLEDGER_BENCH_LIVE_BLOCKS", "40"))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(
    node: AnvilNode,
    deployment: Deployment,
    workload: Workload,
    *,
    poll_interval_s: float,
    blocks: int,
) -> list[float]:
    with scratch_schema() as url:
        engine = make_engine(url)
        indexer = Indexer(
            engine, RpcClient(node.rpc_url), deployment, IndexerConfig(finality_depth=64)
        )
        while indexer.step():  # catch up before measuring
            pass
        stop = threading.Event()
        seen_at_node: dict[int, float] = {}
        seen_in_sql: dict[int, float] = {}
        rpc = RpcClient(node.rpc_url)

        def watch_node() -> None:
            while not stop.is_set():
                seen_at_node.setdefault(rpc.block_number(), time.perf_counter())
                time.sleep(0.002)

        def watch_sql() -> None:
            with engine.connect() as connection:
                while not stop.is_set():
                    number = connection.execute(select(col(IndexerCursor.block_number))).scalar()
                    connection.rollback()
                    if number is not None:
                        seen_in_sql.setdefault(number, time.perf_counter())
                    time.sleep(0.002)

        def load() -> None:
            while not stop.is_set():
                workload.signed_fill()

        threads = [threading.Thread(target=f, daemon=True) for f in (watch_node, watch_sql, load)]
        indexer_thread = threading.Thread(
            target=indexer.run,
            kwargs={"poll_interval_s": poll_interval_s, "stop": stop.is_set},
            daemon=True,
        )
        start_block = rpc.block_number()
        for thread in (*threads, indexer_thread):
            thread.start()
        while rpc.block_number() < start_block + blocks + 1:
            time.sleep(0.05)
        time.sleep(1.5)
        stop.set()
        for thread in (*threads, indexer_thread):
            thread.join(timeout=10)
        engine.dispose()
    lags = []
    for number, t_node in seen_at_node.items():
        if number <= start_block:
            continue
        t_sql = min((t for n, t in seen_in_sql.items() if n >= number), default=None)
        if t_sql is not None:
            lags.append((t_sql - t_node) * 1000)
    return lags


def run() -> Iterator[dict[str, Any]]:
    with deployed_devnet(participants=4) as (node, _, deployment, workload):
        node.request("evm_setAutomine", [False])
        node.request("evm_setIntervalMining", [1])
        lags = measure(node, deployment, workload, poll_interval_s=0.01, blocks=BLOCKS)
        baseline = measure(
            node, deployment, workload, poll_interval_s=1.0, blocks=max(10, BLOCKS // 4)
        )
    yield {
        "metric": "p50_ms",
        "value": round(statistics.median(lags), 1),
        "unit": "ms",
        "blocks": len(lags),
    }
    yield {
        "metric": "p99_ms",
        "value": round(percentile(lags, 0.99), 1),
        "unit": "ms",
        "target": 300,
    }
    yield {
        "metric": "baseline_1s_poll_p50_ms",
        "value": round(statistics.median(baseline), 1),
        "unit": "ms",
    }
    yield {
        "metric": "ratio_p50_to_baseline",
        "value": round(statistics.median(lags) / statistics.median(baseline), 3),
        "unit": "x",
    }

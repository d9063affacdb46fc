"""Backfill speed: events per second indexed into PostgreSQL from Anvil (≥ 100,000 events).

Measured in the same run on the same chain and PostgreSQL:
- baseline: a naive indexer that calls eth_getLogs once per block and inserts each event
  through the ORM, one commit per block (`ratio` = ours / it);
- floor: the pipeline's raw limit, eth_getLogs over the range (ranges of about the size ours
  takes) and COPY of the undecoded logs into a scratch table (`floor_ratio` = ours / it);
- Ponder 1.0 (bench/ponder/, tables equivalent to ours for these events: every event decoded,
  certificates, holdings), timed from its server up to its backfill done (`ponder_ratio`).
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from eth_utils import to_checksum_address
from sqlalchemy import text
from sqlmodel import Session
from web3 import Web3
from web3.types import RPCEndpoint

from backend.chain.anvil import AnvilNode
from backend.chain.deployment import Deployment
from backend.core.config import get_settings
from backend.core.db import make_engine
from backend.market.orders import default_meter_id
from bench._cpu import cpu_s_of
from bench._database import BENCH_DATABASE_URL, scratch_schema
from bench._devnet import deployed_devnet
from bench._ponder import run_ponder
from indexer.base import Indexer, IndexerConfig
from indexer.decoder import LogDecoder
from indexer.models import ChainEvent
from indexer.rpc import RpcClient
from scripts.workload import Workload

TARGET_EVENTS = int(os.environ.get("GRIDLEDGER_BENCH_EVENTS", "100000"))
PONDER_FINALITY_MARGIN = 40  # blocks: Ponder's finality distance is 30 on an unknown chain
BATCH = 50  # certificates per issueBatch: 50 CertificateIssued + 1 TransferBatch


def generate(w3: Web3, wl: Workload, target_events: int) -> int:
    """Fill the chain with hourly REC issuance (plus the workload's mix); returns log count."""
    wl.run(40)
    owners = wl.people
    devices = [wl.devices[p.address] for p in owners]
    wl.advance(2 * 365 * 24 * 3600)
    hour0 = (wl.now() // 3600 - 2 * 365 * 24 + 48) * 3600
    txs = target_events // (BATCH + 1) + 1
    nonce = w3.eth.get_transaction_count(wl.issuer.address)
    w3.provider.make_request(RPCEndpoint("anvil_setAutomine"), [False])
    registry = wl.c.registry.functions
    for i in range(txs):
        device_index = i % len(devices)
        first = hour0 + (i // len(devices)) * BATCH * 3600
        starts = [first + h * 3600 for h in range(BATCH)]
        issue = registry.issueBatch(
            devices[device_index],
            owners[device_index].address,
            starts,
            [s + 3600 for s in starts],
            [4_000] * BATCH,
            [wl.evidence(default_meter_id(owners[device_index].address), s, 4_000) for s in starts],
        )
        w3.eth.send_raw_transaction(
            wl.signed_call(wl.issuer, issue, nonce=nonce + i, gas=3_500_000)
        )
        if i % 8 == 7:
            w3.provider.make_request(RPCEndpoint("anvil_mine"), [1])
    while w3.eth.get_transaction_count(wl.issuer.address) < nonce + txs:
        w3.provider.make_request(RPCEndpoint("anvil_mine"), [1])
    w3.provider.make_request(RPCEndpoint("anvil_setAutomine"), [True])
    addresses = [to_checksum_address(c.address) for c in wl.deployment.contracts.values()]
    return len(w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": addresses}))


def cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def naive_baseline(
    *,
    database_url: str,
    rpc_url: str,
    deployment: Deployment,
    max_events: int = 15_000,
    max_seconds: float = 40,
) -> float:
    """Per-block eth_getLogs, per-row ORM insert, commit per block."""
    rpc = RpcClient(rpc_url)
    decoder = LogDecoder({n: (c.address, c.abi) for n, c in deployment.contracts.items()})
    engine = make_engine(database_url)
    head = rpc.block_number()
    events, started = 0, time.perf_counter()
    with Session(engine) as session:
        for number in range(deployment.block_number, head + 1):
            for raw in rpc.get_logs(number, number, decoder.addresses):
                decoded = decoder.decode(raw)
                if decoded is None:
                    continue
                event, args = decoded
                session.add(
                    ChainEvent(
                        chain_id=deployment.chain_id,
                        block_number=number,
                        block_hash=raw["blockHash"],
                        tx_hash=raw["transactionHash"],
                        log_index=int(raw["logIndex"], 16),
                        contract=event.contract,
                        address=raw["address"],
                        event=event.name,
                        args={k: str(v) for k, v in args.items()},
                    )
                )
                events += 1
            session.commit()
            if events >= max_events or time.perf_counter() - started > max_seconds:
                break
    elapsed = time.perf_counter() - started
    engine.dispose()
    return events / elapsed


def raw_floor(*, database_url: str, rpc_url: str, deployment: Deployment) -> tuple[int, float]:
    """(logs, seconds) of eth_getLogs over the whole range, in ranges aimed at about
    `IndexerConfig.target_logs` logs, each range's undecoded logs COPYed into a scratch table."""
    rpc = RpcClient(rpc_url)
    addresses = LogDecoder(
        {n: (c.address, c.abi) for n, c in deployment.contracts.items()}
    ).addresses
    target = IndexerConfig().target_logs
    engine = make_engine(database_url)
    head, block, span, logs = rpc.block_number(), deployment.block_number, 200, 0
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE raw_logs (block_number bigint, block_hash text, tx_hash text, "
            "log_index bigint, address text, topics text, data text)"
        )
        driver = connection.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        while block <= head:
            last = min(block + span - 1, head)
            raw = rpc.get_logs(block, last, addresses)
            with driver.cursor().copy("COPY raw_logs FROM STDIN") as copy:
                for item in raw:
                    copy.write_row(
                        (
                            int(item["blockNumber"], 16),
                            item["blockHash"],
                            item["transactionHash"],
                            int(item["logIndex"], 16),
                            item["address"],
                            ",".join(item["topics"]),
                            item["data"],
                        )
                    )
            logs += len(raw)
            span = max(1, int(span * min(2.0, max(0.25, target / max(len(raw), 1)))))
            block = last + 1
    elapsed = time.perf_counter() - started
    engine.dispose()
    return logs, elapsed


@dataclass
class Backfill:
    events: int
    seconds: float
    writer_cpu: float  # the indexer's process (its threads)
    worker_cpu: float  # the fetch worker process
    node_cpu: float
    postgres_cpu: float  # the writer's backend


def index_chain(node: AnvilNode, deployment: Deployment, *, fetch_process: bool) -> Backfill:
    """Our indexer over the whole chain into a new schema, timed, with each process's CPU."""
    with scratch_schema() as url:
        engine = make_engine(url)
        with engine.connect() as connection:  # the pool's one connection: the writer's
            backend_pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        indexer = Indexer(
            engine,
            RpcClient(node.rpc_url),
            deployment,
            IndexerConfig(
                finality_depth=1,
                fetch_process=fetch_process,
                # GRIDLEDGER_INDEXER_WRITE_BEHIND=1 measures the writes on their own thread
                write_behind=get_settings().indexer_write_behind,
            ),
        )
        writer_cpu = cpu_s(resource.RUSAGE_SELF)
        worker_cpu = cpu_s(resource.RUSAGE_CHILDREN)  # the fetch worker, once reaped
        node_cpu, postgres_cpu = cpu_s_of(node.process.pid), cpu_s_of(backend_pid)
        started = time.perf_counter()
        while indexer.step():
            pass
        elapsed = time.perf_counter() - started
        node_cpu = cpu_s_of(node.process.pid) - node_cpu
        postgres_cpu = cpu_s_of(backend_pid) - postgres_cpu
        indexer.close()  # joins the fetch worker: its CPU is in RUSAGE_CHILDREN now
        writer_cpu = cpu_s(resource.RUSAGE_SELF) - writer_cpu
        worker_cpu = cpu_s(resource.RUSAGE_CHILDREN) - worker_cpu
        engine.dispose()
    return Backfill(
        indexer.metrics.events_total, elapsed, writer_cpu, worker_cpu, node_cpu, postgres_cpu
    )


def run(target_events: int = TARGET_EVENTS, ponder: bool = True) -> Iterator[dict[str, Any]]:
    with deployed_devnet(participants=6) as (node, w3, deployment, wl):
        total = generate(w3, wl, target_events)
        yield {"metric": "chain_events", "value": total, "unit": "events"}
        backfill = index_chain(node, deployment, fetch_process=True)
        # the same with the fetch stage on a thread (the fallback, and main before the worker)
        thread = index_chain(node, deployment, fetch_process=False)
        indexed, elapsed = backfill.events, backfill.seconds
        assert indexed == total == thread.events, f"indexed {indexed}, {thread.events} of {total}"
        ours = indexed / elapsed
        with scratch_schema() as url:
            baseline = naive_baseline(database_url=url, rpc_url=node.rpc_url, deployment=deployment)
        with scratch_schema() as url:
            floor_logs, floor_s = raw_floor(
                database_url=url, rpc_url=node.rpc_url, deployment=deployment
            )
        assert floor_logs == total, f"the floor fetched {floor_logs} of {total} logs"
        floor = floor_logs / floor_s
        yield {"metric": "events_per_s", "value": round(ours), "unit": "events/s", "target": 40_000}
        per_100k = 100_000 / indexed
        yield {  # the fetch worker's and the writer's
            "metric": "python_cpu_s_per_100k",
            "value": round((backfill.writer_cpu + backfill.worker_cpu) * per_100k, 2),
            "unit": "s",
        }
        # the profile of where the 2 cores go: each process's CPU per 100k events
        for name, seconds in (
            ("writer_cpu_s_per_100k", backfill.writer_cpu),
            ("worker_cpu_s_per_100k", backfill.worker_cpu),
            ("node_cpu_s_per_100k", backfill.node_cpu),  # Anvil answering eth_getLogs
            ("postgres_cpu_s_per_100k", backfill.postgres_cpu),  # the writer's backend
        ):
            yield {"metric": name, "value": round(seconds * per_100k, 2), "unit": "s"}
        yield {
            "metric": "thread_events_per_s",
            "value": round(thread.events / thread.seconds),
            "unit": "events/s",
        }
        yield {
            "metric": "thread_python_cpu_s_per_100k",
            "value": round(thread.writer_cpu * 100_000 / thread.events, 2),
            "unit": "s",
        }
        yield {"metric": "baseline_events_per_s", "value": round(baseline), "unit": "events/s"}
        yield {"metric": "ratio", "value": round(ours / baseline, 2), "unit": "x"}
        yield {"metric": "floor_events_per_s", "value": round(floor), "unit": "events/s"}
        yield {"metric": "floor_ratio", "value": round(ours / floor, 2), "unit": "x", "target": 0.5}
        if not ponder:
            return
        # empty blocks on top: every event is beyond Ponder's finality distance, so it backfills
        # them all (historical sync) as ours did, instead of block by block as realtime
        for _ in range(PONDER_FINALITY_MARGIN // 8):
            w3.provider.make_request(RPCEndpoint("anvil_mine"), [8])
        peer = run_ponder(
            rpc_url=node.rpc_url,
            deployment=deployment,
            database_url=BENCH_DATABASE_URL,
            expected_events=total,
        )
        yield {
            "metric": "ponder_events_per_s",
            "value": round(peer.events_per_s),
            "unit": "events/s",
            "indexing_s": round(peer.indexing_s, 2),
            "startup_s": round(peer.startup_s, 2),
        }
        yield {
            "metric": "ponder_ratio",
            "value": round(ours / peer.events_per_s, 2),
            "unit": "x",
            "target": 1.5,
        }

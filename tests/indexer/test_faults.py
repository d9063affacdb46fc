"""Crashes and RPC faults: a killed indexer resumes exactly; a flaky node loses nothing."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from sqlalchemy import select

from backend.chain.anvil import free_port
from backend.core.config import PROJECT_ROOT
from backend.core.db import make_engine
from indexer.models import IndexerCursor
from tests.fixtures.indexing import catch_up
from tests.fixtures.mirror_check import assert_mirror_equals_chain, chain_log_count


def cursor_block(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(IndexerCursor.__table__.c.block_number)).scalar() or -1


def start_indexer_process(devnet, database_url: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "GRIDLEDGER_DATABASE_URL": database_url,
        "GRIDLEDGER_RPC_URL": devnet.node.rpc_url,
        "GRIDLEDGER_DEPLOYMENT_FILE": str(devnet.settings.deployment_file),
        "GRIDLEDGER_FINALITY_DEPTH": "6",
        "GRIDLEDGER_INDEXER_INITIAL_RANGE": "2",
        "GRIDLEDGER_REDIS_URL": "",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "indexer"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_killed_mid_batch_resumes_with_no_duplicate_and_no_gap(devnet, fresh_pg_url):
    devnet.workload.run(60)
    for _ in range(10):
        devnet.workload.issue(batch=20)
    engine = make_engine(fresh_pg_url)
    rng = random.Random(3)
    kills = 0
    head = devnet.w3.eth.block_number
    while cursor_block(engine) < head and kills < 6:
        before = cursor_block(engine)
        process = start_indexer_process(devnet, fresh_pg_url)
        deadline = time.monotonic() + 30
        while cursor_block(engine) == before and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.05))  # somewhere inside the next batch
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
    assert kills >= 3, "the workload was too small to kill the indexer mid-way"
    final = start_indexer_process(devnet, fresh_pg_url)
    try:
        deadline = time.monotonic() + 120
        while cursor_block(engine) < head and time.monotonic() < deadline:
            assert final.poll() is None, final.stderr.read().decode()
            time.sleep(0.2)
    finally:
        final.send_signal(signal.SIGTERM)
        final.wait(timeout=30)
    counts = assert_mirror_equals_chain(engine, devnet.workload)
    assert counts["events"] == chain_log_count(devnet.workload, devnet.deployment.block_number)
    engine.dispose()


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing."""

    def log_message(self, *args):
        pass

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers["Content-Length"]))


def serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """An HTTP server on a free local port, serving on a daemon thread; and its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def reply_json(handler: BaseHTTPRequestHandler, body: bytes) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class FlakyProxy:
    """An HTTP proxy in front of Anvil that drops, delays, fails or truncates some requests."""

    def __init__(self, upstream: str, fault_rate: float = 0.3, seed: int = 11):
        self.upstream = upstream
        self.rng = random.Random(seed)
        self.fault_rate = fault_rate
        self.faults = {"drop": 0, "delay": 0, "http500": 0, "truncate": 0}
        proxy = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = self.body()
                fault = proxy.pick()
                if fault == "drop":
                    self.connection.close()
                    return
                if fault == "delay":
                    time.sleep(1.0)  # longer than the client's timeout
                if fault == "http500":
                    self.send_response(500)
                    self.end_headers()
                    return
                reply = requests.post(
                    proxy.upstream, data=body, headers={"Content-Type": "application/json"}
                ).content
                if fault == "truncate":
                    reply = reply[: len(reply) // 2]
                reply_json(self, reply)

        self.server, self.url = serve(Handler)

    def pick(self) -> str | None:
        if self.rng.random() >= self.fault_rate:
            return None
        fault = self.rng.choice(list(self.faults))
        self.faults[fault] += 1
        return fault

    def close(self) -> None:
        self.server.shutdown()


def test_flaky_rpc_loses_and_doubles_nothing(devnet, make_indexer, fresh_pg_url):
    devnet.workload.run(40)
    proxy = FlakyProxy(devnet.node.rpc_url)
    try:
        indexer = make_indexer(
            fresh_pg_url, rpc_url=proxy.url, rpc_timeout_s=0.5, finality_depth=8, initial_range=4
        )
        catch_up(indexer)
        devnet.workload.run(10)
        catch_up(indexer)
    finally:
        proxy.close()
    assert all(n > 0 for n in proxy.faults.values()), proxy.faults
    assert indexer.rpc.retries_done >= sum(proxy.faults.values())
    counts = assert_mirror_equals_chain(indexer.engine, devnet.workload)
    assert counts["events"] == chain_log_count(devnet.workload, devnet.deployment.block_number)


class RefusingProxy:
    """An HTTP proxy in front of Anvil that refuses `eth_getLogs` over more than `max_blocks`
    blocks as a provider does (a JSON-RPC error), so the fetcher shrinks its range wherever it
    runs (thread or worker process)."""

    def __init__(self, upstream: str, max_blocks: int = 3):
        self.refused: list[int] = []
        proxy = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = self.body()
                calls = json.loads(body)
                wide = [
                    c
                    for c in calls
                    if c["method"] == "eth_getLogs"
                    and int(c["params"][0]["toBlock"], 16) - int(c["params"][0]["fromBlock"], 16)
                    >= max_blocks
                ]
                if wide:
                    first, last = wide[0]["params"][0]["fromBlock"], wide[0]["params"][0]["toBlock"]
                    proxy.refused.append(int(last, 16) - int(first, 16) + 1)
                    error = {"code": -32005, "message": "query returned more than 10000 results"}
                    reply = json.dumps(
                        [{"jsonrpc": "2.0", "id": c["id"], "error": error} for c in wide]
                    )
                    reply_bytes = reply.encode()
                else:
                    reply_bytes = requests.post(
                        upstream, data=body, headers={"Content-Type": "application/json"}
                    ).content
                reply_json(self, reply_bytes)

        self.server, self.url = serve(Handler)

    def close(self) -> None:
        self.server.shutdown()


@pytest.mark.parametrize("fetch_process", [True, False], ids=["worker", "thread"])
def test_a_refused_range_shrinks_until_the_node_takes_it(
    devnet, make_indexer, fresh_pg_url, fetch_process
):
    devnet.workload.run(20)
    proxy = RefusingProxy(devnet.node.rpc_url, max_blocks=3)
    try:
        indexer = make_indexer(
            fresh_pg_url,
            rpc_url=proxy.url,
            finality_depth=2,
            initial_range=64,
            fetch_process=fetch_process,
        )
        catch_up(indexer)
    finally:
        proxy.close()
    assert (indexer._worker is not None) == fetch_process
    assert proxy.refused and proxy.refused[0] == 64
    assert indexer.range <= 6  # what the worker adapted to came back to the indexer
    counts = assert_mirror_equals_chain(indexer.engine, devnet.workload)
    assert counts["events"] == chain_log_count(devnet.workload, devnet.deployment.block_number)

"""`python -m indexer rebuild`: the mirror rebuilt from the chain equals the mirror before, in
one transaction, while the API keeps answering from it and a live indexer keeps running."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any, cast

import httpx

from backend.core.config import PROJECT_ROOT
from backend.core.db import make_engine
from indexer.base import Indexer, IndexerConfig
from indexer.rebuild import mirror_lost_blocks, rebuild_mirror
from indexer.reset import mirror_table
from indexer.rpc import RpcClient
from tests.fixtures.app import app_on
from tests.fixtures.indexing import catch_up
from tests.fixtures.mirror_check import assert_mirror_equals_chain, mirror_snapshot
from tests.fixtures.server import serve, stepping


class WaitingRpc:
    """The indexer's RPC client whose calls wait for `ready` first: a rebuild using it is
    inside its transaction (mirror tables emptied, not yet refilled) until `ready` is set,
    however fast the machine."""

    def __init__(self, rpc: RpcClient, ready: threading.Event) -> None:
        self.rpc, self.ready = rpc, ready

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.rpc, name)

        def waiting(*args: Any, **kwargs: Any) -> Any:
            assert self.ready.wait(timeout=60), "the API was not read during the rebuild"
            return method(*args, **kwargs)

        return waiting


def test_rebuild_equals_the_mirror_before_while_the_api_answers(devnet, make_indexer, fresh_pg_url):
    devnet.workload.run(30)
    devnet.workload.issue(batch=5)
    indexer = make_indexer(fresh_pg_url, finality_depth=6, initial_range=3)
    began = time.monotonic()
    catch_up(indexer)
    first_index_s = time.monotonic() - began  # the baseline: the same chain indexed live
    engine = indexer.engine
    before = mirror_snapshot(engine)
    assert len(before["trades"]) > 0 and len(before["chain_events"]) > 50
    assert mirror_lost_blocks(engine, indexer.rpc, devnet.deployment.chain_id) is None

    settings = devnet.settings.model_copy(update={"database_url": fresh_pg_url})
    app, app_engine = app_on(fresh_pg_url, settings)
    answers: list[dict] = []
    stop = threading.Event()
    with serve(app) as base_url:
        expected = httpx.get(f"{base_url}/v1/public/summary", timeout=10).json()

        read_thrice = threading.Event()

        def read_while_rebuilding():
            with httpx.Client(base_url=base_url, timeout=10) as client:
                while not stop.is_set():
                    reply = client.get("/v1/public/summary")
                    answers.append({"status": reply.status_code, **reply.json()})
                    if len(answers) >= 3:
                        read_thrice.set()

        reader = threading.Thread(target=read_while_rebuilding, daemon=True)
        # a live indexer keeps stepping: the rebuild's lock makes it wait, then resume
        with stepping(lambda: catch_up(indexer), interval_s=0.01):
            reader.start()
            report = rebuild_mirror(  # its first RPC call (tables emptied) waits for 3 reads
                engine,
                cast(RpcClient, WaitingRpc(indexer.rpc, read_thrice)),
                devnet.deployment,
                IndexerConfig(finality_depth=6),
            )
            stop.set()
            reader.join(timeout=30)
    app_engine.dispose()

    assert report.head_block == devnet.w3.eth.block_number
    print(
        f"\nrebuild: {report.events} events in {report.seconds:.2f} s under {len(answers)} API "
        f"reads; first indexing {first_index_s:.2f} s; ratio {report.seconds / first_index_s:.2f}"
    )
    assert report.events == len(before["chain_events"])
    assert len(answers) >= 3, "the API was not read during the rebuild"
    assert all(a == {"status": 200, **expected} for a in answers)  # never empty, never half
    assert mirror_snapshot(engine) == before
    devnet.workload.run(5)  # the live indexer follows on from the rebuilt cursor
    catch_up(indexer)
    assert_mirror_equals_chain(engine, devnet.workload)


def test_rebuild_command_rebuilds_a_damaged_mirror(devnet, make_indexer, fresh_pg_url):
    devnet.workload.run(15)
    indexer = make_indexer(fresh_pg_url, finality_depth=6)
    catch_up(indexer)
    before = mirror_snapshot(indexer.engine)
    with indexer.engine.begin() as connection:  # an operator's mistake: rows lost
        connection.execute(mirror_table("trades").delete())
    env = {
        **os.environ,
        "GRIDLEDGER_DATABASE_URL": fresh_pg_url,
        "GRIDLEDGER_RPC_URL": devnet.node.rpc_url,
        "GRIDLEDGER_DEPLOYMENT_FILE": str(devnet.settings.deployment_file),
        "GRIDLEDGER_FINALITY_DEPTH": "6",
        "GRIDLEDGER_REDIS_URL": "",
    }
    done = subprocess.run(
        [sys.executable, "-m", "indexer", "rebuild"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "mirror rebuilt from the chain up to block" in done.stdout
    engine = make_engine(fresh_pg_url)
    assert mirror_snapshot(engine) == before  # which the first test checks against the chain
    engine.dispose()


def test_a_batch_read_before_a_rebuild_is_dropped_not_applied_twice(
    devnet, make_indexer, fresh_pg_url
):
    """A rebuild commits between a live step's read of the cursor and its write: the step's
    rows would count the new blocks a second time on top of the rebuilt mirror."""
    devnet.workload.run(15)
    indexer = make_indexer(fresh_pg_url, finality_depth=6)
    catch_up(indexer)
    devnet.workload.run(8)  # the next step's work, which the rebuild indexes too
    rebuilt: list[int] = []

    class RebuiltMidStep(Indexer):
        def claim_cursor(self, connection, cursor):
            if not rebuilt:
                report = rebuild_mirror(self.engine, self.rpc, self.deployment, self.config)
                rebuilt.append(report.head_block)
            super().claim_cursor(connection, cursor)

    live = RebuiltMidStep(indexer.engine, indexer.rpc, devnet.deployment, indexer.config)
    assert live.step() == 0  # dropped: the cursor moved under it
    assert rebuilt == [devnet.w3.eth.block_number]
    catch_up(live)
    assert_mirror_equals_chain(indexer.engine, devnet.workload)

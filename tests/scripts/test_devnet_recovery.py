"""`make run` after an unclean stop resumes the same chain and books.

Anvil writes its state file on a clean exit only, unless told an interval: before, a SIGKILLed
devnet Anvil left no state (or an old one), the next `make run` started a new chain, deployed
anew and emptied the mirror — the "different, near-empty trade list". Now the state is written
every `GRIDLEDGER_ANVIL_STATE_INTERVAL_S`, and when the node still lost blocks the mirror had
indexed, the mirror is rebuilt from the chain at resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session, select
from web3 import Web3

from backend.chain.anvil import free_port, start_anvil
from backend.chain.deployment import Deployment
from backend.core.config import PROJECT_ROOT, Settings
from backend.core.db import make_engine
from backend.settlement.models import Reconciliation, SettlementBatch
from indexer.base import Indexer
from indexer.rebuild import mirror_lost_blocks
from indexer.rpc import RpcClient
from scripts.deploy import deploy_all
from scripts.devnet import resync_mirror
from scripts.workload import Workload
from tests.fixtures.indexing import catch_up, thread_fetch_config
from tests.fixtures.mirror_check import assert_mirror_equals_chain, mirror_snapshot
from tests.fixtures.processes import child_running, kill_tree

pytestmark = pytest.mark.anvil
ZERO = "0x" + "0" * 40


def test_node_killed_between_dumps_resumes_with_the_mirror_rebuilt(tmp_path, fresh_pg_url):
    state, port = tmp_path / "anvil-state.json", free_port()
    node = start_anvil(port=port, state_file=state)  # its state saved on a clean exit only
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        rpc_url=node.rpc_url,
        database_url=fresh_pg_url,
        finality_depth=6,
    )
    w3 = Web3(Web3.HTTPProvider(node.rpc_url))
    deployment = deploy_all(w3, settings)
    workload = Workload(w3, deployment, seed=7)
    workload.setup()
    workload.run(30)
    node.stop()  # a clean exit: the state is saved up to here
    node = start_anvil(port=port, state_file=state)
    engine = make_engine(fresh_pg_url)
    try:
        indexer = Indexer(
            engine, RpcClient(node.rpc_url), deployment, thread_fetch_config(finality_depth=6)
        )
        catch_up(indexer)
        saved = mirror_snapshot(engine)
        saved_head = w3.eth.block_number
        workload.run(30)  # indexed, but never saved by the node
        catch_up(indexer)
        assert mirror_snapshot(engine) != saved
        kept_tx = last_tx(w3, saved_head)
        lost_tx = last_tx(w3, w3.eth.block_number)
        log_settlements(engine, kept=kept_tx, lost=lost_tx)
        node.process.kill()
        node.process.wait()
        node = start_anvil(port=port, state_file=state)
        assert w3.eth.block_number == saved_head
        assert mirror_lost_blocks(engine, indexer.rpc, deployment.chain_id) is not None

        resync_mirror(deployment, settings, engine)

        assert mirror_lost_blocks(engine, indexer.rpc, deployment.chain_id) is None
        assert mirror_snapshot(engine) == saved
        assert_mirror_equals_chain(engine, workload)
        with Session(engine) as session:
            batches = {b.tx_hash: b.status for b in session.exec(select(SettlementBatch))}
            records = {r.trade_id: r.status for r in session.exec(select(Reconciliation))}
        assert batches == {kept_tx: "mined", lost_tx: "dropped"}
        assert records == {1: "settled", 2: "pending"}  # trade 2 is sent again
    finally:
        engine.dispose()
        node.stop()


def last_tx(w3: Web3, block: int) -> str:
    """The newest transaction at or below `block`."""
    while not (transactions := w3.eth.get_block(block)["transactions"]):
        block -= 1
    return transactions[-1].to_0x_hex()


def log_settlements(engine, *, kept: str, lost: str) -> None:
    """Two mined settle batches in the worker's log: one in a block the node saved, one in a
    block it will lose."""
    with Session(engine) as session:
        for trade_id, tx_hash in ((1, kept), (2, lost)):
            batch = SettlementBatch(
                kind="settle", sender=ZERO, nonce=trade_id, tx_hash=tx_hash, raw_tx="00", items=1
            )
            batch.status = "mined"
            session.add(batch)
            session.flush()
            session.add(
                Reconciliation(
                    trade_id=trade_id,
                    period_start=0,
                    period_end=900,
                    seller=ZERO,
                    seller_meter="0x" + "11" * 32,
                    contracted_wh=1_000,
                    metered_wh=1_000,
                    allocated_wh=1_000,
                    delivered_wh=1_000,
                    shortfall_wh=0,
                    expected_payout=1,
                    expected_penalty=0,
                    expected_refund=0,
                    status="settled",
                    batch_id=batch.id,
                    settled_tx=tx_hash,
                )
            )
        session.commit()


# ------------------------------------------------------------------ the whole `make run`

ENERGY_TRADES = (
    "SELECT trade_id, seller, buyer, quantity_wh, price, payment, status, delivered_wh, "
    "seller_payout, buyer_refund, penalty FROM trades ORDER BY trade_id"
)


def devnet_env(data_dir: Path, rpc_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDLEDGER_") and k != "RESET"}
    env.update(
        {
            "GRIDLEDGER_DATA_DIR": str(data_dir),
            "GRIDLEDGER_RPC_URL": rpc_url,
            "GRIDLEDGER_API_PORT": str(free_port()),
            "GRIDLEDGER_VTN_PORT": str(free_port()),
            "GRIDLEDGER_SIM_PROSUMERS": "4",
            "GRIDLEDGER_SIM_CONSUMERS": "5",
            "GRIDLEDGER_SIM_SECONDS_PER_DAY": "60",
            "GRIDLEDGER_SIM_HOURS": "3",
            "GRIDLEDGER_SIM_START_HOUR_UTC": "9",
            "GRIDLEDGER_ANVIL_STATE_INTERVAL_S": "1",
            "GRIDLEDGER_MQTT_TOPIC_ROOT": f"gl-recovery-{data_dir.name}-{os.getpid()}",
            "GRIDLEDGER_MQTT_CLIENT_ID": f"gl-recovery-ingest-{data_dir.name}-{os.getpid()}",
            **extra,
        }
    )
    return env


def books(data_dir: Path, rpc_url: str) -> tuple[list[tuple], dict[str, tuple[int, int]]]:
    """The mirror's trade list, and every party's gUSD and market balance on the chain."""
    engine = make_engine(f"sqlite:///{data_dir / 'gridledger.db'}")
    with engine.connect() as connection:
        trades = [tuple(row) for row in connection.execute(text(ENERGY_TRADES))]
    engine.dispose()
    deployment = Deployment.read(data_dir / "deployment.json")
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    token, market = (
        w3.eth.contract(address=deployment.contracts[n].address, abi=deployment.contracts[n].abi)
        for n in ("GridUSD", "EnergyMarket")
    )
    balances = {}
    for party in {p for t in trades for p in (t[1], t[2])}:
        address = Web3.to_checksum_address(party)
        balances[party] = (
            token.functions.balanceOf(address).call(),
            market.functions.withdrawable(address).call(),
        )
    return trades, balances


def settled_books(data_dir: Path, rpc_url: str, timeout_s: float = 90) -> tuple:
    """The books once they stop changing (the last periods settled and indexed) for longer
    than the node's state interval, so that its last dump holds them."""
    deadline = time.monotonic() + timeout_s
    previous = books(data_dir, rpc_url)
    while True:
        time.sleep(2.5)
        current = books(data_dir, rpc_url)
        if current == previous or time.monotonic() > deadline:
            return current
        previous = current


def wait_for_text(path: Path, marker: str, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while marker not in path.read_text():
        assert process.poll() is None, path.read_text()
        assert time.monotonic() < deadline, f"no {marker!r}:\n{path.read_text()}"
        time.sleep(0.5)


@pytest.mark.mqtt
def test_make_run_killed_with_sigkill_resumes_the_same_chain_and_books(tmp_path):
    rpc_url = f"http://127.0.0.1:{free_port()}"
    output = tmp_path / "make-run.out"
    with open(output, "wb") as out:
        stack = subprocess.Popen(
            [sys.executable, "-m", "scripts.devnet"],
            cwd=PROJECT_ROOT,
            env=devnet_env(tmp_path, rpc_url),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_text(output, "finished its simulated period", stack, timeout_s=240)
        trades, balances = settled_books(tmp_path, rpc_url)
        assert len(trades) >= 5 and any(t[6] == "settled" for t in trades)
        # Anvil alone killed: make run restarts it from its state and runs on, same books
        os.kill(child_running(stack.pid, "anvil"), signal.SIGKILL)
        wait_for_text(output, "[   anvil] restarted at block", stack, timeout_s=60)
        assert "[   anvil] died with exit code -9 (1 death(s)" in output.read_text()
        assert stack.poll() is None
        assert settled_books(tmp_path, rpc_url) == (trades, balances)
        deployment = json.loads((tmp_path / "deployment.json").read_text())
    finally:  # an unclean stop: every process of the stack SIGKILLed, Anvil included
        kill_tree(stack.pid)
    assert not (tmp_path / "make-run.out").read_text().count("stopped (state saved)")

    resumed = subprocess.run(
        [sys.executable, "-m", "scripts.devnet", "--exit-after-deploy"],
        cwd=PROJECT_ROOT,
        env=devnet_env(tmp_path, rpc_url),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed the existing deployment" in resumed.stdout, resumed.stdout
    assert json.loads((tmp_path / "deployment.json").read_text()) == deployment

    node = start_anvil(
        port=int(rpc_url.rsplit(":", 1)[1]), state_file=tmp_path / "anvil-state.json"
    )
    try:
        assert books(tmp_path, rpc_url) == (trades, balances)
    finally:
        node.stop()

"""The `dr.settle_events` beat task in real worker and beat processes (`make run`'s filesystem
broker, file locks): an ended DR event is settled on chain once, from chain time."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlmodel import select

from backend.core.config import PROJECT_ROOT
from backend.dr.models import DrSettlement, DrSettlementStatus
from tests.fixtures.dr_chain import build_dr_world
from tests.fixtures.workers import wait_for


def test_beat_settles_an_ended_event_once(market, tmp_path):
    world = build_dr_world(market)
    workload = market.devnet.workload
    due = world.end + market.settings.dr_missing_data_deadline_s + 60
    workload.advance(due - workload.now())  # the task judges "ended" in chain time

    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDLEDGER_")}
    env.update(
        GRIDLEDGER_DATABASE_URL=market.database_url,
        GRIDLEDGER_RPC_URL=market.devnet.node.rpc_url,
        GRIDLEDGER_DATA_DIR=str(market.settings.data_dir),
        GRIDLEDGER_SETTLEMENT_BEAT_INTERVAL_S="0.5",
    )
    processes = []
    for name, module in (("worker", "backend.workers"), ("beat", "backend.workers.beat")):
        with open(tmp_path / f"{name}.log", "w") as log:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", module],
                    cwd=PROJECT_ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    try:

        def settled() -> bool:
            with market.session() as session:
                rows = session.exec(select(DrSettlement)).all()
                return [r.status for r in rows].count(DrSettlementStatus.SETTLED) == 2

        def runs() -> int:
            lines = (tmp_path / "worker.log").read_text().splitlines()
            return sum("dr.settle_events[" in line and "succeeded" in line for line in lines)

        wait_for(settled, 90, "the DR event settled by the beat task")
        # three more runs of the task pass: nothing is sent again
        seen, after = len(world.settled_logs()), runs()
        wait_for(lambda: runs() >= after + 3, 60, "three more dr.settle_events runs")
    finally:
        for process in processes:
            process.terminate()
            process.wait(15)
    assert seen == len(world.settled_logs()) == 2
    assert world.conserved()
    assert (market.settings.data_dir / "locks" / "settler-key.lock").exists()

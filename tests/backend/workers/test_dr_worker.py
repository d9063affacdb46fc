"""The `dr.settle_events` beat task in real worker and beat processes (`make run`'s filesystem
broker, file locks): an ended DR event is settled on chain once, from chain time."""

from __future__ import annotations

from sqlmodel import select

from backend.dr.models import DrSettlement, DrSettlementStatus
from tests.fixtures.dr_chain import build_dr_world
from tests.fixtures.processes import worker_and_beat
from tests.fixtures.workers import wait_for


def test_beat_settles_an_ended_event_once(market, tmp_path):
    world = build_dr_world(market)
    workload = market.devnet.workload
    due = world.end + market.settings.dr_missing_data_deadline_s + 60
    workload.advance(due - workload.now())  # the task judges "ended" in chain time

    with worker_and_beat(market, tmp_path):

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
    assert seen == len(world.settled_logs()) == 2
    assert world.conserved()
    assert (market.settings.data_dir / "locks" / "settler-key.lock").exists()

"""`make run`'s worker and beat: no Redis configured, kombu's filesystem transport, file locks
for settlement and the database's lock for the beat."""

from __future__ import annotations

from sqlmodel import func, select

from backend.core.config import PROJECT_ROOT
from backend.settlement.models import Reconciliation
from tests.fixtures.processes import worker_and_beat
from tests.fixtures.workers import wait_for


def test_filesystem_broker_worker_settles(market, tmp_path):
    workload = market.devnet.workload
    for _ in range(3):
        workload.signed_fill()
    market.catch_up()
    trades = market.open_trades()
    workload.advance(3 * 900 + 120)
    market.meter_readings({(t.seller_meter, t.delivery_start): 1_000 for t in trades})

    with worker_and_beat(market, tmp_path, GRIDLEDGER_SETTLEMENT_GATE_DELAY_S="60"):

        def settled():
            with market.session() as session:
                return session.exec(
                    select(func.count())
                    .select_from(Reconciliation)
                    .where(Reconciliation.status == "settled")
                ).one() == len(trades)

        wait_for(settled, 60, "settlement over the filesystem broker")
    text = (tmp_path / "worker.log").read_text()
    assert "filesystem://" in text
    # no Redis: the beat took PostgreSQL's advisory lock (the database here)
    assert "holds the beat lock" in (tmp_path / "beat.log").read_text()
    assert "PostgresBeatLock" in (tmp_path / "beat.log").read_text()
    assert (market.settings.data_dir / "celery" / "queue").is_dir()
    assert any((market.settings.data_dir / "celery" / "control").iterdir())
    assert not (PROJECT_ROOT / "control").exists()
    assert (market.settings.data_dir / "locks" / "settler-key.lock").exists()
    events = market.ctx.market.events.TradeSettled().get_logs(from_block=0)
    assert sorted(e["args"]["tradeId"] for e in events) == sorted(t.trade_id for t in trades)

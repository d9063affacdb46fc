"""The settlement log after the chain lost blocks: a DR settlement recorded mined whose
transaction the chain no longer has is dropped, its results go back to pending and are paid
again, once (before, only trades and device-hours were put back: DR results stayed settled).
Back at the same chain state the re-signed transaction is the dropped one byte for byte: it is
logged again under its old row (the unique tx_hash once crashed the worker here)."""

from __future__ import annotations

from sqlmodel import select

from backend.dr.models import DrSettlement, DrSettlementStatus
from backend.dr.settlement import settle_due_events
from backend.settlement.models import BatchKind, BatchStatus, SettlementBatch
from backend.settlement.rewind import forget_lost_batches
from tests.fixtures.dr_chain import build_dr_world


def test_dr_results_of_a_lost_batch_are_sent_again(market):
    world = build_dr_world(market)
    now = world.end + market.settings.dr_missing_data_deadline_s
    w3 = market.ctx.w3
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    with market.session() as session:
        (report,) = settle_due_events(session, market.ctx, market.locks, market.settings, now=now)
    assert report.settled == 2 and len(world.settled_logs()) == 2
    assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True
    assert world.settled_logs() == []  # the chain lost the settle transaction

    with market.session() as session:
        assert forget_lost_batches(session, w3) == 1
        (lost,) = session.exec(select(SettlementBatch)).all()
        assert (lost.kind, lost.status) == (BatchKind.DR_SETTLE, BatchStatus.DROPPED)
        due = [r for r in session.exec(select(DrSettlement)).all() if r.incentive or r.penalty]
        assert len(due) == 2
        assert {(r.status, r.batch_id) for r in due} == {(DrSettlementStatus.PENDING, None)}

    with market.session() as session:
        (report,) = settle_due_events(session, market.ctx, market.locks, market.settings, now=now)
    assert (report.settled, report.already_settled) == (2, 0)
    assert len(world.settled_logs()) == 2  # paid once, on the chain as it is now
    with market.session() as session:
        due = [r for r in session.exec(select(DrSettlement)).all() if r.incentive or r.penalty]
        (sent,) = session.exec(select(SettlementBatch)).all()
        assert sent.status == BatchStatus.MINED
        assert {(r.status, r.settled_tx) for r in due} == {
            (DrSettlementStatus.SETTLED, sent.tx_hash)
        }
    assert world.conserved()

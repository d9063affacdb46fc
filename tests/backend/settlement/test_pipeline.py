"""Several settleBatch transactions in flight: a batch that fails mid-pipeline pays nobody
twice, the others mine, and every trade is settled exactly once (or closed by someone else)."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import select

from backend.settlement import sending
from backend.settlement.models import Reconciliation, SettlementBatch
from backend.settlement.services import close_due_periods, trade_tuple
from tests.backend.settlement.test_services import make_trades, settled_events


def token_total(market) -> int:
    workload = market.devnet.workload
    holders = [p.address for p in workload.people] + [market.ctx.market.address]
    return sum(workload.c.token.functions.balanceOf(a).call() for a in holders)


def assert_money_conserved(market, tokens_before: int, still_escrowed: int = 0) -> None:
    contract, token = market.ctx.market, market.devnet.workload.c.token
    assert token_total(market) == tokens_before  # settlement moves no token, only balances
    assert contract.functions.totalEscrowed().call() == still_escrowed
    assert (  # every token the market holds is owed to someone, or still in escrow
        contract.functions.totalWithdrawable().call() + still_escrowed
        == token.functions.balanceOf(contract.address).call()
    )


def batches(market) -> list[tuple[str, int]]:
    with market.session() as session:
        return [
            (b.status, b.items)
            for b in session.exec(
                select(SettlementBatch)
                .where(SettlementBatch.kind == "settle")
                .order_by(SettlementBatch.nonce)
            ).all()
        ]


def test_a_batch_reverting_mid_pipeline_settles_each_trade_exactly_once(market, monkeypatch):
    trades = make_trades(market, 9)  # three batches of 3, all in one window
    workload = market.devnet.workload
    grace = max(t.reclaim_grace_period for t in trades)
    workload.advance(3 * 900 + 120 + grace)  # due, and reclaimable by their buyers
    market.meter_readings({(t.seller_meter, t.delivery_start): 700 for t in trades})
    tokens_before = token_total(market)
    victim = trades[4]  # in the second batch
    sign_window = sending.sign_window

    def reclaim_after_signing(ctx, window):
        signed = sign_window(ctx, window)
        if victim.trade_id in {i.trade_id for tx in signed[0] for i in tx.items}:
            # the buyer reclaims between our signing (estimate passed) and our broadcast
            buyer = next(p for p in workload.people if p.address.lower() == victim.buyer)
            workload.tx(buyer, ctx.market.functions.reclaim(trade_tuple(victim), victim.trade_id))
        return signed

    monkeypatch.setattr(sending, "sign_window", reclaim_after_signing)
    settings = market.settings.model_copy(update={"settlement_pipeline_depth": 3})
    with market.session() as session:
        reports = close_due_periods(session, market.ctx, market.locks, settings)

    assert sum(r.settled for r in reports) == 8 and sum(r.already_closed for r in reports) == 1
    # window: mined, reverted (the reclaimed trade), mined; then the two others alone again
    assert batches(market) == [("mined", 3), ("reverted", 3), ("mined", 3), ("mined", 2)]
    events = settled_events(market)
    assert sorted(events) == sorted(t.trade_id for t in trades if t is not victim)
    assert all(len(v) == 1 for v in events.values())
    with market.session() as session:
        statuses = dict(
            session.exec(
                select(Reconciliation.status, func.count()).group_by(Reconciliation.status)
            ).all()
        )
    assert statuses == {"settled": 8, "closed": 1}
    assert_money_conserved(market, tokens_before)

    with market.session() as session:  # a second run sends nothing
        again = close_due_periods(session, market.ctx, market.locks, settings)
    assert sum(r.settled for r in again) == 0 and len(batches(market)) == 4


def test_a_batch_refused_mid_window_is_isolated_and_the_window_goes_on(market):
    trades = make_trades(market, 7)  # batches of 3, 3, 1; the refused trade in the second
    market.devnet.workload.advance(3 * 900 + 120)
    market.meter_readings({(t.seller_meter, t.delivery_start): 500 for t in trades})
    tokens_before = token_total(market)
    bad_id = trades[4].trade_id
    settings = market.settings.model_copy(update={"settlement_pipeline_depth": 4})
    with market.session() as session:  # a mirror row that no longer matches the chain's record
        bad = session.get(type(trades[0]), bad_id)
        bad.price += 1
        session.add(bad)
        session.commit()
        reports = close_due_periods(session, market.ctx, market.locks, settings)
        failed = session.get(Reconciliation, bad_id)
        assert failed.status == "failed" and "EnergyMarketTradeMismatch(uint256)" in failed.failure
    assert sum(r.settled for r in reports) == 6
    events = settled_events(market)
    assert sorted(events) == sorted(t.trade_id for t in trades if t.trade_id != bad_id)
    assert all(len(v) == 1 for v in events.values())
    assert sorted(items for _, items in batches(market)) == [1, 1, 1, 3]
    assert {status for status, _ in batches(market)} == {"mined"}
    assert_money_conserved(market, tokens_before, still_escrowed=trades[4].payment)

"""Reconciliation against meter data and settlement on Anvil, exactly once."""

from __future__ import annotations

from sqlmodel import select

from backend.settlement.allocation import TradeTerms, allocate, settlement_amounts
from backend.settlement.models import Reconciliation, SettlementCorrection
from backend.settlement.services import close_due_periods, record_corrections, trade_tuple


def settled_events(market) -> dict[int, list]:
    c = market.ctx.market
    events = c.events.TradeSettled().get_logs(from_block=0)
    found: dict[int, list] = {}
    for event in events:
        found.setdefault(event["args"]["tradeId"], []).append(event["args"])
    return found


def make_trades(market, count: int) -> list:
    for _ in range(count):
        market.devnet.workload.signed_fill()
    market.catch_up()
    return market.open_trades()


def test_pro_rata_allocation_is_documented_rule():
    a = TradeTerms(1, 3_000, 100_000, 0, 900)
    b = TradeTerms(2, 1_000, 100_000, 0, 900)
    long = TradeTerms(3, 2_000, 100_000, 0, 1_800)  # 1,000 Wh per slot
    result = allocate([a, b, long], {0: 2_500, 900: None})
    assert (result[1].allocated_wh, result[2].allocated_wh) == (1_500, 500)  # 2,500 x 3/5, x 1/5
    assert result[3].allocated_wh == 500 and result[3].data_missing
    assert (
        settlement_amounts(TradeTerms(1, 1_000, 200_000, 0, 900, 500, 2_000), 900).penalty == 2_000
    )


def test_every_trade_settled_once_with_the_expected_payout(any_market):
    market = any_market
    trades = make_trades(market, 7)
    assert len(trades) == 7
    workload = market.devnet.workload
    exports = {}
    for trade in trades:
        exports[(trade.seller_meter, trade.delivery_start)] = exports.get(
            (trade.seller_meter, trade.delivery_start), 0
        )
    for n, key in enumerate(sorted(exports)):
        exports[key] = [0, 1_200, 2_500, 700][n % 4]
    workload.advance(3 * 900 + 120)
    market.meter_readings(exports)
    # every reading sent twice and out of order: idempotent
    again = market.meter_readings(dict(reversed(list(exports.items()))))
    assert again.duplicate == len(exports)

    with market.session() as session:
        reports = close_due_periods(session, market.ctx, market.locks, market.settings)
    assert sum(r.settled for r in reports) == 7
    events = settled_events(market)
    assert sorted(events) == [t.trade_id for t in trades] and all(
        len(v) == 1 for v in events.values()
    )

    # a second run (a duplicated task) sends nothing
    with market.session() as session:
        again_reports = close_due_periods(session, market.ctx, market.locks, market.settings)
    assert sum(r.settled for r in again_reports) == 0

    market.catch_up()
    with market.session() as session:
        records = {r.trade_id: r for r in session.exec(select(Reconciliation)).all()}
        for trade in market.open_trades():
            record = records[trade.trade_id]
            assert trade.status == "settled" and record.status == "settled"
            assert (trade.delivered_wh, trade.seller_payout, trade.penalty) == (
                record.delivered_wh,
                record.expected_payout,
                record.expected_penalty,
            )
            assert events[trade.trade_id][0]["sellerPayout"] == record.expected_payout
        # pro-rata within each seller meter's slot: allocations add up to at most the metered export
        for (meter, start), wh in exports.items():
            group = [
                r for r in records.values() if r.seller_meter == meter and r.period_start == start
            ]
            assert sum(r.allocated_wh for r in group) <= wh
            assert sum(r.allocated_wh for r in group) >= wh - len(group) or any(
                r.allocated_wh >= r.contracted_wh for r in group
            )


def test_missing_data_waits_then_settles_as_zero(any_market):
    market = any_market
    trades = make_trades(market, 2)
    workload = market.devnet.workload
    workload.advance(3 * 900 + 120)
    with market.session() as session:
        reports = close_due_periods(session, market.ctx, market.locks, market.settings)
    assert sum(r.waiting for r in reports) == 2 and sum(r.settled for r in reports) == 0
    workload.advance(market.settings.settlement_missing_data_deadline_s)
    with market.session() as session:
        reports = close_due_periods(session, market.ctx, market.locks, market.settings)
        assert sum(r.settled for r in reports) == 2
        records = session.exec(select(Reconciliation)).all()
        assert all(
            r.data_missing and r.delivered_wh == 0 and r.status == "settled" for r in records
        )
    assert all(market.ctx.market.functions.tradeStatus(t.trade_id).call() == 2 for t in trades)

    # a late reading after settlement: a correction record, no second settlement
    trade = trades[0]
    market.meter_readings({(trade.seller_meter, trade.delivery_start): 2_000})
    with market.session() as session:
        corrections = record_corrections(session, since=0)
        assert [c.trade_id for c in corrections] == [trade.trade_id]
        fixed = corrections[0]
        assert (fixed.settled_delivered_wh, fixed.corrected_metered_wh) == (0, 2_000)
        assert fixed.corrected_delivered_wh == min(2_000, trade.quantity_wh)
        terms = TradeTerms(
            trade.trade_id,
            trade.quantity_wh,
            trade.price,
            0,
            900,
            trade.tolerance_bps,
            trade.penalty_bps,
        )
        corrected, settled = settlement_amounts(terms, 2_000), settlement_amounts(terms, 0)
        # settled on nothing: the seller lost its collateral; 2 kWh would have earned the gross
        assert settled.seller_net == -settled.collateral
        assert fixed.payout_delta == corrected.seller_net - settled.seller_net
        assert record_corrections(session, since=0) == []
        assert len(session.exec(select(SettlementCorrection)).all()) == 1
        close_due_periods(session, market.ctx, market.locks, market.settings)
    assert all(len(v) == 1 for v in settled_events(market).values())


def test_trade_settled_elsewhere_is_never_sent_again(market):
    trades = make_trades(market, 3)
    workload = market.devnet.workload
    workload.advance(3 * 900 + 120)
    outsider = trades[1]
    workload.tx(
        workload.settler,
        market.ctx.market.functions.settle(trade_tuple(outsider), outsider.trade_id, 1),
    )
    market.meter_readings({(t.seller_meter, t.delivery_start): 100 for t in trades})
    with market.session() as session:
        reports = close_due_periods(session, market.ctx, market.locks, market.settings)
    assert sum(r.settled for r in reports) == 2 and sum(r.already_closed for r in reports) == 1
    assert all(len(v) == 1 for v in settled_events(market).values())


def test_a_trade_the_chain_refuses_is_isolated_and_the_rest_settle(market):
    trades = make_trades(market, 3)
    market.devnet.workload.advance(3 * 900 + 120)
    market.meter_readings({(t.seller_meter, t.delivery_start): 500 for t in trades})
    with market.session() as session:  # a mirror row that no longer matches the chain's record
        bad = session.get(type(trades[0]), trades[0].trade_id)
        bad.price += 1
        session.add(bad)
        session.commit()
        reports = close_due_periods(session, market.ctx, market.locks, market.settings)
        failed = session.get(Reconciliation, trades[0].trade_id)
        assert failed.status == "failed" and "EnergyMarketTradeMismatch(uint256)" in failed.failure
    assert sum(r.settled for r in reports) == 2
    assert sorted(settled_events(market)) == [t.trade_id for t in trades[1:]]


def test_discrepancy_flags_oversold_silent_contradicted(market):
    from backend.settlement.flags import scan_meters
    from backend.settlement.models import DiscrepancyFlag

    workload = market.devnet.workload
    seller, buyer = workload.people[0], workload.people[1]
    offer = workload.order(
        seller, 0, quantity=3_000
    )  # SELL; the device makes at most 2,500 Wh / 15 min
    from backend.market.orders import default_meter_id, sign_order

    signature = sign_order(offer, seller.key, workload.chain_id, market.ctx.market.address)
    workload.tx(
        buyer,
        market.ctx.market.functions.fillOrder(
            offer.as_tuple(), signature, 3_000, default_meter_id(buyer.address)
        ),
    )
    market.catch_up()
    workload.advance(3 * 900 + 120)
    meter = "0x" + default_meter_id(seller.address).hex()
    slot = offer.deliveryStart
    market.meter_readings({(meter, slot - 900): 1_000, (meter, slot): 2_000})
    market.meter_readings(  # corrected by the metering data provider: +5 % fine, -50 % flagged
        {(meter, slot - 900): 1_050, (meter, slot): 1_000}, by="provider"
    )
    with market.session() as session:
        close_due_periods(session, market.ctx, market.locks, market.settings)
        scan_meters(session, now=market.ctx.now() + 1_800, silence_s=1_800)
        flags = {(f.kind, f.period_start) for f in session.exec(select(DiscrepancyFlag)).all()}
        scan_meters(session, now=market.ctx.now() + 1_800, silence_s=1_800)
        assert len(session.exec(select(DiscrepancyFlag)).all()) == len(flags)  # flagged once
    assert ("oversold", slot) in flags and ("contradicted", slot) in flags
    assert ("contradicted", slot - 900) not in flags
    assert ("silent", slot + 900) in flags


def test_reconciliation_api_shows_parties_only(market):
    from fastapi.testclient import TestClient
    from sqlmodel import Session

    from backend.accounts.models import Account
    from backend.accounts.security import create_access_token
    from backend.api.deps import get_db
    from backend.core.config import get_settings
    from backend.main import create_app

    trades = make_trades(market, 2)
    market.devnet.workload.advance(3 * 900 + 120)
    market.meter_readings({(t.seller_meter, t.delivery_start): 800 for t in trades})
    with market.session() as session:
        close_due_periods(session, market.ctx, market.locks, market.settings)
    market.catch_up()

    def override():
        with Session(market.engine) as session:
            yield session

    app = create_app()
    app.dependency_overrides[get_db] = override
    client = TestClient(app)
    with market.session() as session:
        operator = Account(address="0x" + "0f" * 20, roles=["operator"])
        session.add(operator)
        session.commit()
        tokens = {
            a.address: {
                "Authorization": "Bearer " + create_access_token(a.id, a.roles, get_settings())
            }
            for a in session.exec(select(Account)).all()
        }

    def auth(address):
        return tokens[address]

    trade = trades[0]
    seller = trade.seller.lower()
    outsider = next(
        a for a in tokens if a not in (trade.seller.lower(), trade.buyer.lower(), "0x" + "0f" * 20)
    )
    operator = "0x" + "0f" * 20
    reply = client.get(f"/v1/settlement/reconciliations/{trade.trade_id}", headers=auth(seller))
    body = reply.json()
    assert (
        reply.status_code == 200
        and body["status"] == "settled"
        and body["buyer"] == trade.buyer.lower()
    )
    allocated = int(body["allocated_wh"])  # Wh are decimal strings on the wire
    assert body["contracted_wh"] == str(trade.quantity_wh) and 0 < allocated <= 800
    assert body["delivered_wh"] == str(min(allocated, trade.quantity_wh)) and body["settled_tx"]
    denied = client.get(f"/v1/settlement/reconciliations/{trade.trade_id}", headers=auth(outsider))
    assert denied.status_code == 403 and denied.json()["type"].endswith(
        "/reconciliation-access-denied"
    )
    assert client.get("/v1/settlement/reconciliations/999", headers=auth(seller)).status_code == 404
    everything = client.get("/v1/settlement/reconciliations", headers=auth(operator)).json()
    assert sorted(r["trade_id"] for r in everything) == sorted(t.trade_id for t in trades)
    mine = client.get("/v1/settlement/reconciliations", headers=auth(outsider)).json()
    assert all(outsider in (r["seller"].lower(), r["buyer"]) for r in mine)
    assert client.get("/v1/settlement/flags", headers=auth(seller)).status_code == 403
    assert client.get("/v1/settlement/flags", headers=auth(operator)).status_code == 200


def test_missing_data_deadline_stays_before_the_reclaim_deadline(market):
    from backend.settlement.services import missing_data_deadline

    grace = market.ctx.market.functions.reclaimGracePeriod().call()
    patient = market.settings.model_copy(update={"settlement_missing_data_deadline_s": 10 * grace})
    assert missing_data_deadline(market.ctx, patient) == grace - patient.settlement_reclaim_margin_s
    assert (
        missing_data_deadline(market.ctx, market.settings)
        == market.settings.settlement_missing_data_deadline_s
    )


def test_missing_data_wait_follows_the_grace_period_recorded_in_each_trade(market):
    """A trade made under a short grace period is settled before its own reclaim time, even
    after the admin lengthens the grace period for later trades."""
    workload = market.devnet.workload
    functions = market.ctx.market.functions
    before = functions.reclaimGracePeriod().call()
    short, long = (
        functions.MIN_RECLAIM_GRACE_PERIOD().call(),
        functions.MAX_RECLAIM_GRACE_PERIOD().call(),
    )
    patient = market.settings.model_copy(update={"settlement_missing_data_deadline_s": 10 * 3_600})
    try:
        workload.govern(functions.setReclaimGracePeriod(short))
        trades = make_trades(market, 2)
        assert {t.reclaim_grace_period for t in trades} == {short}
        workload.govern(functions.setReclaimGracePeriod(long))
        end = trades[0].delivery_end
        own_deadline = short - patient.settlement_reclaim_margin_s  # 3 h, not the configured 10 h

        workload.advance(end + own_deadline - 60 - workload.now())
        with market.session() as session:
            reports = close_due_periods(session, market.ctx, market.locks, patient)
        assert sum(r.waiting for r in reports) == 2 and sum(r.settled for r in reports) == 0

        workload.advance(120)
        with market.session() as session:
            reports = close_due_periods(session, market.ctx, market.locks, patient)
        assert sum(r.settled for r in reports) == 2
        assert workload.now() < end + short  # settled before the buyers could reclaim
        assert all(functions.tradeStatus(t.trade_id).call() == 2 for t in trades)
    finally:
        workload.govern(functions.setReclaimGracePeriod(before))


def test_unsigned_owner_readings_are_missing_data_and_pay_nothing(market):
    """The seller posts its own export, unsigned: stored, shown, and settled as missing data
    (the trade is not paid for it), with the reconciliation saying why."""
    trades = make_trades(market, 2)
    market.devnet.workload.advance(3 * 900 + 120)
    claims = {(t.seller_meter, t.delivery_start): 2_000 for t in trades}  # all they sold
    result = market.meter_readings(claims, by="owner")
    assert (result.accepted, result.verified) == (len(claims), 0)
    with market.session() as session:
        reports = close_due_periods(session, market.ctx, market.locks, market.settings)
    assert sum(r.waiting for r in reports) == 2 and sum(r.settled for r in reports) == 0
    market.devnet.workload.advance(market.settings.settlement_missing_data_deadline_s)
    with market.session() as session:
        reports = close_due_periods(session, market.ctx, market.locks, market.settings)
        assert sum(r.settled for r in reports) == 2
        records = session.exec(select(Reconciliation)).all()
        assert all(
            r.data_missing and r.unverified_slots == 1 and r.delivered_wh == 0 and r.metered_wh == 0
            for r in records
        )
    assert all(e[0]["sellerPayout"] == 0 for e in settled_events(market).values())

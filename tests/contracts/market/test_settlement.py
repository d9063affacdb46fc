"""Escrow, settlement on metered delivery, reclaim after the grace period, pull withdrawals."""

import pytest

from backend.market.orders import payment
from tests.fixtures.energy_market import (
    GRACE,
    MAX_GRACE,
    MIN_GRACE,
    PENALTY_BPS,
    PRICE,
    TOLERANCE_BPS,
    reverts_with,
    same_address,
    settlement,
    single_event,
    trade_from_log,
)

OPEN, SETTLED, RECLAIMED = 1, 2, 3
ESCROW = payment(10_000, PRICE)  # open_trade: 10 kWh at 0.15 gUSD/kWh = 1.5 gUSD


@pytest.fixture
def holders(alice, bob, carol, market):
    return (alice, bob, carol, market)


@pytest.fixture
def conserved(gusd, holders):
    """Asserts on exit that tokens only moved between holders, and the market is solvent."""

    def total():
        return sum(gusd.balanceOf(h) for h in holders)

    before = total()

    def check(market):
        assert total() == before
        assert market.totalEscrowed() + market.totalWithdrawable() == gusd.balanceOf(market)

    return check


def end_of(trade):
    return trade[7]


# ---------------------------------------------------------------- escrow


def test_fill_escrows_payment_and_pays_seller_nothing_before_settlement(
    market, gusd, open_trade, alice, conserved
):
    _trade, trade_id, _ = open_trade
    assert gusd.balanceOf(market) == ESCROW == market.totalEscrowed()
    assert market.withdrawable(alice) == 0
    assert market.tradeStatus(trade_id) == OPEN
    with reverts_with(market.EnergyMarketNothingToWithdraw, account=alice.address):
        market.withdraw(sender=alice)
    conserved(market)


# ---------------------------------------------------------------- settlement math


@pytest.mark.parametrize(
    "delivered, payout, penalty, refund",
    [
        (10_000, 1_500_000, 0, 0),  # full delivery
        (9_600, 1_440_000, 0, 60_000),  # 400 Wh short, within the 500 Wh tolerance
        (8_000, 1_155_000, 45_000, 345_000),  # 1_500 Wh penalised: 225_000 * 20 %
        (12_000, 1_500_000, 0, 0),  # over-delivery is capped at the contracted 10 kWh
        (0, 0, 0, 1_500_000),  # nothing delivered: penalty capped at gross (0)
    ],
    ids=["full", "within-tolerance", "shortfall-penalised", "over-delivery", "nothing"],
)
def test_settle_credits_payout_and_refund(
    market,
    chain,
    gusd,
    settler,
    open_trade,
    alice,
    bob,
    conserved,
    delivered,
    payout,
    penalty,
    refund,
):
    trade, trade_id, _ = open_trade
    assert settlement(10_000, PRICE, delivered, TOLERANCE_BPS, PENALTY_BPS) == {
        "delivered": min(delivered, 10_000),
        "escrow": ESCROW,
        "payout": payout,
        "penalty": penalty,
        "refund": refund,
    }
    chain.pending_timestamp = end_of(trade)

    receipt = market.settle(trade, trade_id, delivered, sender=settler)

    log = single_event(receipt, market.TradeSettled)
    assert (log.tradeId, log.deliveredWh, log.sellerPayout, log.penalty, log.buyerRefund) == (
        trade_id,
        min(delivered, 10_000),
        payout,
        penalty,
        refund,
    )
    assert market.withdrawable(alice) == payout and market.withdrawable(bob) == refund
    assert market.totalEscrowed() == 0 and market.totalWithdrawable() == ESCROW
    assert market.tradeStatus(trade_id) == SETTLED
    conserved(market)


def test_penalty_is_capped_at_seller_gross(
    market, chain, owner, settler, make_order, sign, taker_meter, alice, bob, conserved
):
    market.setSettlementParameters(0, 10_000, sender=owner)
    order = make_order(alice)
    log = single_event(
        market.fillOrder(
            order.as_tuple(), sign(order, alice), 10_000, taker_meter(bob), sender=bob
        ),
        market.TradeCreated,
    )
    chain.pending_timestamp = order.deliveryEnd

    settled = single_event(
        market.settle(trade_from_log(log), log.tradeId, 4_000, sender=settler), market.TradeSettled
    )

    # gross 600_000, uncapped penalty 6_000 Wh * 0.15 * 100 % = 900_000
    assert (settled.sellerPayout, settled.penalty, settled.buyerRefund) == (0, 600_000, 1_500_000)
    conserved(market)


def test_open_trade_keeps_the_settlement_terms_it_was_made_under(
    market, chain, owner, settler, open_trade, alice
):
    trade, trade_id, _ = open_trade
    market.setSettlementParameters(0, 10_000, sender=owner)
    chain.pending_timestamp = end_of(trade)

    settled = single_event(
        market.settle(trade, trade_id, 8_000, sender=settler), market.TradeSettled
    )

    assert settled.penalty == 45_000  # 5 % tolerance and 20 % penalty recorded in the trade


# ---------------------------------------------------------------- rounding

CHEAP = 999  # base units per kWh: one Wh is worth less than one unit


@pytest.mark.parametrize(
    "delivered, payout, refund", [(1, 1, 0), (0, 0, 1)], ids=["delivered", "not-delivered"]
)
def test_one_wh_fill_below_1000_units_per_kwh_costs_the_buyer_one_unit(
    market,
    chain,
    gusd,
    settler,
    make_order,
    sign,
    taker_meter,
    alice,
    bob,
    conserved,
    delivered,
    payout,
    refund,
):
    order = make_order(alice, quantity_wh=7, price=CHEAP)
    bob_before = gusd.balanceOf(bob)

    log = single_event(
        market.fillOrder(order.as_tuple(), sign(order, alice), 1, taker_meter(bob), sender=bob),
        market.TradeCreated,
    )

    assert log.payment == 1 == payment(1, CHEAP)  # ceil(999 / 1000): rounded up, never free
    assert gusd.balanceOf(bob) == bob_before - 1 and market.totalEscrowed() == 1
    chain.pending_timestamp = order.deliveryEnd
    settled = single_event(
        market.settle(trade_from_log(log), log.tradeId, delivered, sender=settler),
        market.TradeSettled,
    )
    assert (settled.sellerPayout, settled.penalty, settled.buyerRefund) == (payout, 0, refund)
    assert market.withdrawable(alice) == payout and market.withdrawable(bob) == refund
    conserved(market)


@pytest.mark.parametrize("delivered", [0, 1, 3, 6, 7, 9])
def test_rounded_up_amounts_keep_the_escrow_conserved(
    market, chain, settler, make_order, sign, taker_meter, alice, bob, conserved, delivered
):
    order = make_order(alice, quantity_wh=7, price=CHEAP)
    log = single_event(
        market.fillOrder(order.as_tuple(), sign(order, alice), 7, taker_meter(bob), sender=bob),
        market.TradeCreated,
    )
    expected = settlement(7, CHEAP, delivered, TOLERANCE_BPS, PENALTY_BPS)
    assert log.payment == expected["escrow"] == 7  # ceil(6.993)
    chain.pending_timestamp = order.deliveryEnd

    settled = single_event(
        market.settle(trade_from_log(log), log.tradeId, delivered, sender=settler),
        market.TradeSettled,
    )

    assert (settled.sellerPayout, settled.penalty, settled.buyerRefund) == (
        expected["payout"],
        expected["penalty"],
        expected["refund"],
    )
    assert settled.sellerPayout + settled.buyerRefund == log.payment
    # the delivered Wh are paid for, rounded up, unless the penalty takes it back
    assert settled.sellerPayout + settled.penalty >= -(-min(delivered, 7) * CHEAP // 1000)
    conserved(market)


def test_settle_reverts_before_delivery_end(market, chain, settler, open_trade):
    trade, trade_id, _ = open_trade
    chain.pending_timestamp = end_of(trade) - 1
    with reverts_with(
        market.EnergyMarketSettlementTooEarly, tradeId=trade_id, deliveryEnd=end_of(trade)
    ):
        market.settle(trade, trade_id, 10_000, sender=settler)


def test_settle_twice_reverts_trade_already_closed(market, chain, settler, open_trade):
    trade, trade_id, _ = open_trade
    chain.pending_timestamp = end_of(trade)
    market.settle(trade, trade_id, 10_000, sender=settler)
    with reverts_with(market.EnergyMarketTradeAlreadyClosed, tradeId=trade_id):
        market.settle(trade, trade_id, 10_000, sender=settler)


def test_settle_reverts_when_trade_does_not_match_record(market, chain, settler, open_trade):
    trade, trade_id, _ = open_trade
    chain.pending_timestamp = end_of(trade)
    inflated = (*trade[:4], trade[4] + 1, *trade[5:])
    with reverts_with(market.EnergyMarketTradeMismatch, tradeId=trade_id):
        market.settle(inflated, trade_id, 10_000, sender=settler)
    with reverts_with(market.EnergyMarketTradeMismatch, tradeId=trade_id + 1):
        market.settle(trade, trade_id + 1, 10_000, sender=settler)


def test_settle_is_settler_only(market, chain, open_trade, stranger):
    trade, trade_id, _ = open_trade
    chain.pending_timestamp = end_of(trade)
    with reverts_with(
        market.AccessControlUnauthorizedAccount,
        account=stranger.address,
        neededRole=market.SETTLER_ROLE(),
    ):
        market.settle(trade, trade_id, 10_000, sender=stranger)
    with reverts_with(
        market.AccessControlUnauthorizedAccount,
        account=stranger.address,
        neededRole=market.SETTLER_ROLE(),
    ):
        market.settleBatch([trade], [trade_id], [10_000], sender=stranger)


# ---------------------------------------------------------------- batch settlement


@pytest.fixture
def three_trades(market, make_order, sign, taker_meter, alice, bob, carol):
    """alice sells 10 kWh to bob, carol sells 6 kWh to bob, bob sells 4 kWh to alice."""
    trades = []
    for seller, buyer, qty, salt in (
        (alice, bob, 10_000, 1),
        (carol, bob, 6_000, 2),
        (bob, alice, 4_000, 3),
    ):
        order = make_order(seller, quantity_wh=qty, salt=salt)
        receipt = market.fillOrder(
            order.as_tuple(), sign(order, seller), qty, taker_meter(buyer), sender=buyer
        )
        log = single_event(receipt, market.TradeCreated)
        trades.append((trade_from_log(log), log.tradeId))
    return trades


def test_settle_batch_settles_every_trade(
    market, chain, settler, three_trades, alice, bob, carol, conserved
):
    delivered = [10_000, 5_000, 4_100]
    chain.pending_timestamp = end_of(three_trades[0][0])

    receipt = market.settleBatch(
        [t for t, _ in three_trades], [i for _, i in three_trades], delivered, sender=settler
    )

    logs = market.TradeSettled.from_receipt(receipt)
    expected = [
        settlement(t[4], t[5], d, TOLERANCE_BPS, PENALTY_BPS)
        for (t, _), d in zip(three_trades, delivered, strict=True)
    ]
    assert [
        (log.tradeId, log.deliveredWh, log.sellerPayout, log.penalty, log.buyerRefund)
        for log in logs
    ] == [
        (i, e["delivered"], e["payout"], e["penalty"], e["refund"])
        for (_, i), e in zip(three_trades, expected, strict=True)
    ]
    assert market.withdrawable(alice) == expected[0]["payout"] + expected[2]["refund"]
    assert (
        market.withdrawable(bob)
        == expected[0]["refund"] + expected[1]["refund"] + expected[2]["payout"]
    )
    assert market.withdrawable(carol) == expected[1]["payout"]
    assert market.totalEscrowed() == 0
    conserved(market)


def test_settle_batch_reverts_on_length_mismatch(market, chain, settler, three_trades):
    chain.pending_timestamp = end_of(three_trades[0][0])
    with reverts_with(market.EnergyMarketLengthMismatch, trades=3, tradeIds=2, deliveredWh=3):
        market.settleBatch([t for t, _ in three_trades], [1, 2], [1, 2, 3], sender=settler)


def test_settle_batch_is_all_or_nothing(market, chain, settler, three_trades):
    (first, first_id), (second, second_id), _ = three_trades
    chain.pending_timestamp = end_of(first)
    market.settle(second, second_id, 6_000, sender=settler)
    with reverts_with(market.EnergyMarketTradeAlreadyClosed, tradeId=second_id):
        market.settleBatch([first, second], [first_id, second_id], [10_000, 6_000], sender=settler)
    assert market.tradeStatus(first_id) == OPEN


# ---------------------------------------------------------------- reclaim


def test_reclaim_reverts_before_grace_period_ends(market, chain, open_trade, bob):
    trade, trade_id, _ = open_trade
    deadline = end_of(trade) + GRACE
    chain.pending_timestamp = deadline - 1
    with reverts_with(market.EnergyMarketReclaimTooEarly, tradeId=trade_id, deadline=deadline):
        market.reclaim(trade, trade_id, sender=bob)


def test_anyone_can_reclaim_for_the_buyer_after_grace_period(
    market, chain, gusd, settler, open_trade, bob, stranger, conserved
):
    trade, trade_id, _ = open_trade
    chain.pending_timestamp = end_of(trade) + GRACE

    receipt = market.reclaim(trade, trade_id, sender=stranger)

    log = single_event(receipt, market.TradeReclaimed)
    assert (log.tradeId, log.refund) == (trade_id, ESCROW) and same_address(log.buyer, bob)
    assert market.withdrawable(bob) == ESCROW and market.withdrawable(stranger) == 0
    assert market.tradeStatus(trade_id) == RECLAIMED
    with reverts_with(market.EnergyMarketTradeAlreadyClosed, tradeId=trade_id):
        market.settle(trade, trade_id, 10_000, sender=settler)
    with reverts_with(market.EnergyMarketTradeAlreadyClosed, tradeId=trade_id):
        market.reclaim(trade, trade_id, sender=bob)
    conserved(market)


def test_grace_period_change_does_not_move_an_open_trades_reclaim_time(
    market, chain, owner, open_trade, bob, conserved
):
    trade, trade_id, _ = open_trade
    assert trade[10] == GRACE  # recorded in the trade when it was made
    market.setReclaimGracePeriod(MIN_GRACE, sender=owner)
    chain.pending_timestamp = end_of(trade) + MIN_GRACE

    with reverts_with(
        market.EnergyMarketReclaimTooEarly, tradeId=trade_id, deadline=end_of(trade) + GRACE
    ):
        market.reclaim(trade, trade_id, sender=bob)

    market.setReclaimGracePeriod(MAX_GRACE, sender=owner)
    chain.pending_timestamp = end_of(trade) + GRACE
    market.reclaim(trade, trade_id, sender=bob)
    assert market.tradeStatus(trade_id) == RECLAIMED
    conserved(market)


def test_trade_made_after_a_grace_period_change_carries_the_new_one(
    market, chain, owner, make_order, sign, taker_meter, alice, bob
):
    market.setReclaimGracePeriod(MIN_GRACE, sender=owner)
    order = make_order(alice)
    log = single_event(
        market.fillOrder(order.as_tuple(), sign(order, alice), 1_000, taker_meter(bob), sender=bob),
        market.TradeCreated,
    )
    trade = trade_from_log(log)
    assert trade[10] == MIN_GRACE
    market.setReclaimGracePeriod(MAX_GRACE, sender=owner)
    chain.pending_timestamp = end_of(trade) + MIN_GRACE

    market.reclaim(trade, log.tradeId, sender=bob)
    assert market.tradeStatus(log.tradeId) == RECLAIMED


def test_reclaim_reverts_when_the_grace_period_passed_in_is_not_the_recorded_one(
    market, chain, open_trade, bob
):
    trade, trade_id, _ = open_trade
    chain.pending_timestamp = end_of(trade) + MIN_GRACE
    shortened = (*trade[:10], MIN_GRACE)
    with reverts_with(market.EnergyMarketTradeMismatch, tradeId=trade_id):
        market.reclaim(shortened, trade_id, sender=bob)


def test_reclaim_after_settlement_reverts(market, chain, settler, open_trade, bob):
    trade, trade_id, _ = open_trade
    chain.pending_timestamp = end_of(trade) + GRACE
    market.settle(trade, trade_id, 10_000, sender=settler)
    with reverts_with(market.EnergyMarketTradeAlreadyClosed, tradeId=trade_id):
        market.reclaim(trade, trade_id, sender=bob)


def test_reclaim_reverts_when_trade_does_not_match_record(market, chain, open_trade, stranger):
    trade, trade_id, _ = open_trade
    chain.pending_timestamp = end_of(trade) + GRACE
    redirected = (trade[0], stranger.address, *trade[2:])
    with reverts_with(market.EnergyMarketTradeMismatch, tradeId=trade_id):
        market.reclaim(redirected, trade_id, sender=stranger)


# ---------------------------------------------------------------- withdraw


def test_withdraw_pays_credited_balance_once(
    market, chain, gusd, settler, open_trade, alice, bob, conserved
):
    trade, trade_id, _ = open_trade
    chain.pending_timestamp = end_of(trade)
    market.settle(trade, trade_id, 8_000, sender=settler)
    alice_before = gusd.balanceOf(alice)

    receipt = market.withdraw(sender=alice)

    log = single_event(receipt, market.Withdrawn)
    assert same_address(log.account, alice) and log.amount == 1_155_000
    assert gusd.balanceOf(alice) == alice_before + 1_155_000
    assert market.withdrawable(alice) == 0 and market.totalWithdrawable() == 345_000
    with reverts_with(market.EnergyMarketNothingToWithdraw, account=alice.address):
        market.withdraw(sender=alice)
    market.withdraw(sender=bob)
    assert gusd.balanceOf(market) == 0 and market.totalWithdrawable() == 0
    conserved(market)

"""Escrow, seller collateral, settlement on metered delivery, reclaim after the grace period,
pull withdrawals of the free balance.

Every participant starts with DEPOSIT in its market balance (tests/contracts/market/conftest.py)."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.market.orders import BUY, SLOT_SECONDS, payment
from backend.settlement.allocation import TradeTerms, settlement_amounts
from tests.fixtures.energy_market import (
    DEPOSIT,
    GRACE,
    MAX_GRACE,
    MIN_GRACE,
    PENALTY_BPS,
    PRICE,
    TOLERANCE_BPS,
    collateral,
    reverts_with,
    same_address,
    settlement,
    single_event,
    trade_from_log,
)

OPEN, SETTLED, RECLAIMED = 1, 2, 3
ESCROW = payment(10_000, PRICE)  # open_trade: 10 kWh at 0.15 gUSD/kWh = 1.5 gUSD
# open_trade's collateral: 9_500 penalisable Wh (5 % tolerance) * 0.15 gUSD/kWh * 20 % = 0.285 gUSD
COLLATERAL = 285_000
DEPOSITS = 3 * DEPOSIT  # alice's, bob's and carol's


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


def test_fill_escrows_payment_and_locks_seller_collateral(
    market, gusd, open_trade, alice, bob, conserved
):
    _trade, trade_id, _ = open_trade
    assert gusd.balanceOf(market) == DEPOSITS + ESCROW and market.totalEscrowed() == ESCROW
    assert market.collateralFor(10_000, PRICE, TOLERANCE_BPS, PENALTY_BPS) == COLLATERAL
    assert market.lockedCollateral(alice) == COLLATERAL and market.balanceOf(alice) == DEPOSIT
    assert market.withdrawable(alice) == DEPOSIT - COLLATERAL
    assert market.lockedCollateral(bob) == 0 and market.withdrawable(bob) == DEPOSIT
    assert market.tradeStatus(trade_id) == OPEN
    conserved(market)


def test_withdraw_pays_only_the_free_balance(market, gusd, open_trade, alice, conserved):
    alice_before = gusd.balanceOf(alice)

    log = single_event(market.withdraw(sender=alice), market.Withdrawn)

    assert log.amount == DEPOSIT - COLLATERAL
    assert gusd.balanceOf(alice) == alice_before + DEPOSIT - COLLATERAL
    assert market.balanceOf(alice) == market.lockedCollateral(alice) == COLLATERAL
    with reverts_with(market.EnergyMarketNothingToWithdraw, account=alice.address):
        market.withdraw(sender=alice)
    conserved(market)


# ---------------------------------------------------------------- collateral


def test_deposit_adds_to_the_free_balance(market, gusd, alice, conserved):
    gusd.approve(market, 7_000_000, sender=alice)

    log = single_event(market.deposit(7_000_000, sender=alice), market.Deposited)

    assert same_address(log.account, alice) and log.amount == 7_000_000
    assert market.withdrawable(alice) == market.balanceOf(alice) == DEPOSIT + 7_000_000
    assert market.totalWithdrawable() == DEPOSITS + 7_000_000
    with reverts_with(market.EnergyMarketZeroDeposit, account=alice.address):
        market.deposit(0, sender=alice)
    conserved(market)


def test_fill_reverts_when_the_maker_seller_cannot_cover_the_collateral(
    market, make_order, sign, taker_meter, alice, bob
):
    market.withdraw(sender=alice)
    order = make_order(alice)
    with reverts_with(
        market.EnergyMarketInsufficientCollateral,
        seller=alice.address,
        required=COLLATERAL,
        available=0,
    ):
        market.fillOrder(order.as_tuple(), sign(order, alice), 10_000, taker_meter(bob), sender=bob)


def test_fill_reverts_when_the_taker_seller_cannot_cover_the_collateral(
    market, make_order, sign, taker_meter, bob, stranger
):
    bid = make_order(bob, side=BUY)
    with reverts_with(
        market.EnergyMarketInsufficientCollateral,
        seller=stranger.address,
        required=COLLATERAL,
        available=0,
    ):
        market.fillOrder(
            bid.as_tuple(), sign(bid, bob), 10_000, taker_meter(stranger), sender=stranger
        )


def test_collateral_of_open_sales_adds_up(
    market, gusd, make_order, sign, taker_meter, alice, bob, conserved
):
    """A seller's free balance covers each new sale after the collateral of the earlier ones."""
    market.withdraw(sender=alice)
    gusd.approve(market, 2 * COLLATERAL - 1, sender=alice)
    market.deposit(2 * COLLATERAL - 1, sender=alice)
    first, second = make_order(alice, salt=1), make_order(alice, salt=2)
    market.fillOrder(first.as_tuple(), sign(first, alice), 10_000, taker_meter(bob), sender=bob)
    assert market.withdrawable(alice) == COLLATERAL - 1

    with reverts_with(
        market.EnergyMarketInsufficientCollateral,
        seller=alice.address,
        required=COLLATERAL,
        available=COLLATERAL - 1,
    ):
        market.fillOrder(
            second.as_tuple(), sign(second, alice), 10_000, taker_meter(bob), sender=bob
        )
    market.fillOrder(second.as_tuple(), sign(second, alice), 5_000, taker_meter(bob), sender=bob)
    assert market.lockedCollateral(alice) == COLLATERAL + COLLATERAL // 2
    conserved(market)


def test_collateral_for_matches_the_model_and_refuses_impossible_terms(market):
    for quantity, price, tolerance, penalty in [
        (10_000, PRICE, TOLERANCE_BPS, PENALTY_BPS),
        (7, 999, 0, 10_000),
        (1, 1, 10_000, 10_000),
        (2**64, 2**60, 333, 9_999),
    ]:
        assert market.collateralFor(quantity, price, tolerance, penalty) == collateral(
            quantity, price, tolerance, penalty
        )
    with reverts_with(
        market.EnergyMarketInvalidSettlementParameters, toleranceBps=0, penaltyBps=10_001
    ):
        market.collateralFor(1, 1, 0, 10_001)


# ---------------------------------------------------------------- settlement math


@pytest.mark.parametrize(
    "delivered, payout, penalty, refund",
    [
        (10_000, 1_500_000, 0, 0),  # full delivery
        (9_600, 1_440_000, 0, 60_000),  # 400 Wh short, within the 500 Wh tolerance
        (8_000, 1_200_000, 45_000, 300_000),  # 1_500 Wh penalised: 225_000 * 20 %
        (12_000, 1_500_000, 0, 0),  # over-delivery is capped at the contracted 10 kWh
        (0, 0, COLLATERAL, 1_500_000),  # nothing delivered: the whole collateral to the buyer
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
        "collateral": COLLATERAL,
        "seller_net": payout - penalty,
        "buyer_credit": refund + penalty,
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
    # the collateral is unlocked, the penalty taken from it and paid to the buyer
    assert market.lockedCollateral(alice) == 0
    assert market.withdrawable(alice) == DEPOSIT + payout - penalty
    assert market.withdrawable(bob) == DEPOSIT + refund + penalty
    assert market.totalEscrowed() == 0 and market.totalWithdrawable() == DEPOSITS + ESCROW
    assert market.tradeStatus(trade_id) == SETTLED
    conserved(market)


def test_penalty_is_not_capped_at_the_gross_the_collateral_pays_it(
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

    # gross 600_000, penalty 6_000 Wh * 0.15 * 100 % = 900_000 out of the 1_500_000 collateral
    assert (settled.sellerPayout, settled.penalty, settled.buyerRefund) == (
        600_000,
        900_000,
        900_000,
    )
    assert market.withdrawable(alice) == DEPOSIT - 300_000 and market.lockedCollateral(alice) == 0
    assert market.withdrawable(bob) == DEPOSIT + 1_800_000
    conserved(market)


def test_a_seller_who_does_not_deliver_loses_the_collateral_to_the_buyer(
    market, chain, gusd, settler, open_trade, alice, bob, conserved
):
    trade, trade_id, _ = open_trade
    alice_before, bob_before = gusd.balanceOf(alice), gusd.balanceOf(bob)
    chain.pending_timestamp = end_of(trade)

    market.settle(trade, trade_id, 0, sender=settler)
    market.withdraw(sender=alice)
    market.withdraw(sender=bob)

    assert gusd.balanceOf(alice) == alice_before + DEPOSIT - COLLATERAL
    assert gusd.balanceOf(bob) == bob_before + DEPOSIT + ESCROW + COLLATERAL
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
    assert market.withdrawable(alice) == DEPOSIT + payout
    assert market.withdrawable(bob) == DEPOSIT + refund
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
    # the delivered Wh are paid for, rounded up; the penalty comes out of the collateral
    assert settled.sellerPayout >= -(-min(delivered, 7) * CHEAP // 1000)
    assert settled.penalty <= expected["collateral"]
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
    assert market.withdrawable(alice) == (
        DEPOSIT + expected[0]["seller_net"] + expected[2]["buyer_credit"]
    )
    assert market.withdrawable(bob) == (
        DEPOSIT
        + expected[0]["buyer_credit"]
        + expected[1]["buyer_credit"]
        + expected[2]["seller_net"]
    )
    assert market.withdrawable(carol) == DEPOSIT + expected[1]["seller_net"]
    assert sum(market.lockedCollateral(a) for a in (alice, bob, carol)) == 0
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
    market, chain, gusd, settler, open_trade, alice, bob, stranger, conserved
):
    trade, trade_id, _ = open_trade
    chain.pending_timestamp = end_of(trade) + GRACE

    receipt = market.reclaim(trade, trade_id, sender=stranger)

    log = single_event(receipt, market.TradeReclaimed)
    assert (log.tradeId, log.refund) == (trade_id, ESCROW) and same_address(log.buyer, bob)
    assert market.withdrawable(bob) == DEPOSIT + ESCROW and market.withdrawable(stranger) == 0
    # nobody settled in time, which is not the seller's fault: the collateral is unlocked whole
    assert market.withdrawable(alice) == DEPOSIT and market.lockedCollateral(alice) == 0
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
    assert same_address(log.account, alice) and log.amount == DEPOSIT + 1_155_000
    assert gusd.balanceOf(alice) == alice_before + DEPOSIT + 1_155_000
    assert market.withdrawable(alice) == 0
    assert market.totalWithdrawable() == 2 * DEPOSIT + 345_000
    with reverts_with(market.EnergyMarketNothingToWithdraw, account=alice.address):
        market.withdraw(sender=alice)
    market.withdraw(sender=bob)
    assert gusd.balanceOf(market) == market.totalWithdrawable() == DEPOSIT  # carol's
    conserved(market)


# ---------------------------------------------------------------- the backend's mirror


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    quantity=st.integers(1, 10**7),
    price=st.integers(1, 10**6),
    tolerance=st.integers(0, 10_000),
    penalty=st.integers(0, 10_000),
    data=st.data(),
)
def test_backend_settlement_amounts_mirror_the_contract(
    market,
    chain,
    owner,
    settler,
    make_order,
    sign,
    taker_meter,
    alice,
    bob,
    quantity,
    price,
    tolerance,
    penalty,
    data,
):
    """backend.settlement.allocation.settlement_amounts predicts TradeSettled and the collateral
    the fill locked, for any terms (10 kWh-scale trades at up to 1 gUSD/kWh)."""
    snapshot = chain.snapshot()
    try:
        market.setSettlementParameters(tolerance, penalty, sender=owner)
        start = (chain.pending_timestamp // SLOT_SECONDS + 2) * SLOT_SECONDS
        order = make_order(
            alice, quantity_wh=quantity, price=price, start=start, end=start + SLOT_SECONDS
        )
        created = single_event(
            market.fillOrder(
                order.as_tuple(), sign(order, alice), quantity, taker_meter(bob), sender=bob
            ),
            market.TradeCreated,
        )
        delivered = data.draw(st.integers(0, quantity + 10), label="delivered")
        expected = settlement_amounts(
            TradeTerms(
                created.tradeId, quantity, price, start, start + SLOT_SECONDS, tolerance, penalty
            ),
            delivered,
        )
        assert market.lockedCollateral(alice) == expected.collateral
        chain.pending_timestamp = order.deliveryEnd
        settled = single_event(
            market.settle(trade_from_log(created), created.tradeId, delivered, sender=settler),
            market.TradeSettled,
        )
        assert (
            settled.deliveredWh,
            settled.sellerPayout,
            settled.penalty,
            settled.buyerRefund,
        ) == (
            expected.delivered_wh,
            expected.payout,
            expected.penalty,
            expected.refund,
        )
        assert market.withdrawable(alice) == DEPOSIT + expected.seller_net
        assert market.withdrawable(bob) == DEPOSIT + expected.buyer_credit
    finally:
        chain.restore(snapshot)

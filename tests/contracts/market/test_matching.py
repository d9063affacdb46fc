"""Operator matching of bids and offers, and REC atomic swaps."""

import pytest

from backend.market.orders import BUY, REC, SELL, order_digest, payment
from tests.fixtures.energy_market import (
    CERT_ID,
    DEPOSIT,
    PRICE,
    reverts_with,
    reverts_with_nested,
    same_address,
    single_event,
)


@pytest.fixture
def order_hash(market, chain):
    def _hash(order):
        return order_digest(order, chain.chain_id, market.address)

    return _hash


@pytest.fixture
def bid_and_offer(make_order, sign, alice, bob):
    """bob bids 160_000 for 10 kWh, alice offers 8 kWh at PRICE (150_000); both signed."""
    bid = make_order(bob, side=BUY, price=160_000, quantity_wh=10_000)
    offer = make_order(alice, side=SELL, price=PRICE, quantity_wh=8_000)
    return bid, sign(bid, bob), offer, sign(offer, alice)


# ---------------------------------------------------------------- ENERGY matching


@pytest.mark.parametrize("bid_is_resting, price", [(True, 160_000), (False, PRICE)])
def test_match_trades_at_resting_order_price(
    market, gusd, operator, bid_and_offer, alice, bob, order_hash, bid_is_resting, price
):
    bid, bid_sig, offer, offer_sig = bid_and_offer
    bob_before = gusd.balanceOf(bob)

    receipt = market.matchOrders(
        bid.as_tuple(), bid_sig, offer.as_tuple(), offer_sig, 5_000, bid_is_resting, sender=operator
    )

    log = single_event(receipt, market.TradeCreated)
    assert (log.sellOrderHash, log.buyOrderHash) == (order_hash(offer), order_hash(bid))
    seller, buyer, seller_meter, buyer_meter, qty, trade_price = log.trade[:6]
    assert same_address(seller, alice) and same_address(buyer, bob)
    assert (seller_meter, buyer_meter) == (offer.meterId, bid.meterId)
    assert (qty, trade_price) == (5_000, price)
    assert gusd.balanceOf(bob) == bob_before - payment(5_000, price)
    assert market.filled(order_hash(bid)) == 5_000 and market.filled(order_hash(offer)) == 5_000


def test_match_reverts_when_prices_do_not_cross(market, make_order, sign, operator, alice, bob):
    bid = make_order(bob, side=BUY, price=140_000)
    offer = make_order(alice, side=SELL, price=150_000)
    with reverts_with(market.EnergyMarketPricesDoNotCross, bidPrice=140_000, offerPrice=150_000):
        market.matchOrders(
            bid.as_tuple(),
            sign(bid, bob),
            offer.as_tuple(),
            sign(offer, alice),
            1_000,
            True,
            sender=operator,
        )


def test_match_reverts_on_self_trade(market, make_order, sign, operator, alice):
    bid = make_order(alice, side=BUY, price=160_000)
    offer = make_order(alice, side=SELL)
    with reverts_with(market.EnergyMarketSelfTrade, maker=alice.address):
        market.matchOrders(
            bid.as_tuple(),
            sign(bid, alice),
            offer.as_tuple(),
            sign(offer, alice),
            1_000,
            True,
            sender=operator,
        )


def test_match_reverts_when_sides_are_wrong(
    market, make_order, sign, operator, alice, bob, order_hash
):
    not_a_bid = make_order(bob, side=SELL)
    offer = make_order(alice, side=SELL)
    with reverts_with(market.EnergyMarketWrongSide, orderHash=order_hash(not_a_bid), side=SELL):
        market.matchOrders(
            not_a_bid.as_tuple(),
            sign(not_a_bid, bob),
            offer.as_tuple(),
            sign(offer, alice),
            1_000,
            True,
            sender=operator,
        )
    bid = make_order(bob, side=BUY)
    not_an_offer = make_order(alice, side=BUY)
    with reverts_with(market.EnergyMarketWrongSide, orderHash=order_hash(not_an_offer), side=BUY):
        market.matchOrders(
            bid.as_tuple(),
            sign(bid, bob),
            not_an_offer.as_tuple(),
            sign(not_an_offer, alice),
            1_000,
            True,
            sender=operator,
        )


def test_match_reverts_when_delivery_periods_differ(
    market, make_order, sign, operator, period, alice, bob, order_hash
):
    bid = make_order(bob, side=BUY, price=160_000)
    offer = make_order(
        alice, side=SELL, start=period[0] + 900, end=period[1] + 900, expiry=period[0]
    )
    with reverts_with(
        market.EnergyMarketOrdersMismatch, bidHash=order_hash(bid), offerHash=order_hash(offer)
    ):
        market.matchOrders(
            bid.as_tuple(),
            sign(bid, bob),
            offer.as_tuple(),
            sign(offer, alice),
            1_000,
            True,
            sender=operator,
        )


def test_match_validates_both_orders_fully(
    market, make_order, sign, operator, bid_and_offer, alice, bob, carol, order_hash
):
    bid, bid_sig, offer, offer_sig = bid_and_offer
    with reverts_with(
        market.EnergyMarketInvalidSignature, orderHash=order_hash(offer), maker=alice.address
    ):
        market.matchOrders(
            bid.as_tuple(),
            bid_sig,
            offer.as_tuple(),
            sign(offer, carol),
            1_000,
            True,
            sender=operator,
        )
    with reverts_with(
        market.EnergyMarketInsufficientRemaining,
        orderHash=order_hash(offer),
        requested=9_000,
        remaining=8_000,
    ):
        market.matchOrders(
            bid.as_tuple(), bid_sig, offer.as_tuple(), offer_sig, 9_000, True, sender=operator
        )
    market.cancelOrder(bid.as_tuple(), sender=bob)
    with reverts_with(market.EnergyMarketOrderCancelled, orderHash=order_hash(bid)):
        market.matchOrders(
            bid.as_tuple(), bid_sig, offer.as_tuple(), offer_sig, 1_000, True, sender=operator
        )


def test_match_accepts_a_listed_order_without_signature(
    market, operator, bid_and_offer, bob, order_hash
):
    bid, _, offer, offer_sig = bid_and_offer
    market.listOrder(bid.as_tuple(), sender=bob)

    receipt = market.matchOrders(
        bid.as_tuple(), b"", offer.as_tuple(), offer_sig, 8_000, False, sender=operator
    )

    assert single_event(receipt, market.TradeCreated).buyOrderHash == order_hash(bid)
    assert market.filled(order_hash(offer)) == 8_000


def test_match_is_operator_only(market, bid_and_offer, stranger):
    bid, bid_sig, offer, offer_sig = bid_and_offer
    with reverts_with(
        market.AccessControlUnauthorizedAccount,
        account=stranger.address,
        neededRole=market.OPERATOR_ROLE(),
    ):
        market.matchOrders(
            bid.as_tuple(), bid_sig, offer.as_tuple(), offer_sig, 1_000, True, sender=stranger
        )


# ---------------------------------------------------------------- REC atomic swaps


@pytest.fixture
def certified(certificates, owner, alice):
    """alice holds 50 MWh of certificate CERT_ID."""
    certificates.mint(alice, CERT_ID, 50_000_000, sender=owner)
    return certificates


def test_rec_offer_fill_swaps_certificates_and_payment_atomically(
    market, gusd, certified, make_order, sign, alice, bob, order_hash
):
    offer = make_order(alice, product=REC, quantity_wh=20_000_000, price=10_000)
    alice_before, bob_before = gusd.balanceOf(alice), gusd.balanceOf(bob)

    receipt = market.fillOrder(
        offer.as_tuple(), sign(offer, alice), 5_000_000, b"\x00" * 32, sender=bob
    )

    log = single_event(receipt, market.CertificatesTraded)
    assert (
        log.tradeId == 1
        and log.sellOrderHash == order_hash(offer)
        and log.buyOrderHash == b"\x00" * 32
    )
    assert same_address(log.seller, alice) and same_address(log.buyer, bob)
    assert (log.certificateId, log.quantityWh, log.price, log.payment) == (
        CERT_ID,
        5_000_000,
        10_000,
        50_000_000,
    )
    assert certified.balanceOf(bob, CERT_ID) == 5_000_000
    assert certified.balanceOf(alice, CERT_ID) == 45_000_000
    assert gusd.balanceOf(alice) == alice_before + 50_000_000
    assert gusd.balanceOf(bob) == bob_before - 50_000_000
    assert gusd.balanceOf(market) == 3 * DEPOSIT and market.totalEscrowed() == 0
    assert market.lockedCollateral(alice) == 0  # no collateral for certificates
    assert market.tradeStatus(1) == 0  # REC swaps are not stored
    assert not market.TradeCreated.from_receipt(receipt)


def test_rec_bid_match_swaps_at_resting_price(
    market, gusd, certified, make_order, sign, operator, alice, bob
):
    bid = make_order(bob, side=BUY, product=REC, quantity_wh=1_000_000, price=12_000)
    offer = make_order(alice, side=SELL, product=REC, quantity_wh=1_000_000, price=11_000)
    alice_before = gusd.balanceOf(alice)

    receipt = market.matchOrders(
        bid.as_tuple(),
        sign(bid, bob),
        offer.as_tuple(),
        sign(offer, alice),
        1_000_000,
        True,
        sender=operator,
    )

    assert single_event(receipt, market.CertificatesTraded).price == 12_000
    assert certified.balanceOf(bob, CERT_ID) == 1_000_000
    assert gusd.balanceOf(alice) == alice_before + payment(1_000_000, 12_000)


def test_rec_match_reverts_for_different_certificates(
    market, certified, make_order, sign, operator, alice, bob, order_hash
):
    bid = make_order(bob, side=BUY, product=REC, asset_id=CERT_ID + 1)
    offer = make_order(alice, side=SELL, product=REC)
    with reverts_with(
        market.EnergyMarketOrdersMismatch, bidHash=order_hash(bid), offerHash=order_hash(offer)
    ):
        market.matchOrders(
            bid.as_tuple(),
            sign(bid, bob),
            offer.as_tuple(),
            sign(offer, alice),
            1_000,
            True,
            sender=operator,
        )


def test_rec_fill_reverts_when_seller_lacks_certificates(
    market, certified, make_order, sign, alice, bob
):
    bid = make_order(alice, side=BUY, product=REC, quantity_wh=1_000)
    with reverts_with_nested(
        "ERC1155InsufficientBalance(address,uint256,uint256,uint256)",
        bob.address,
        0,
        1_000,
        CERT_ID,
    ):
        market.fillOrder(bid.as_tuple(), sign(bid, alice), 1_000, b"\x00" * 32, sender=bob)

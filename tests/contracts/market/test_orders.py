"""Order life cycle: listing, signed fills (EOA and ERC-1271), partial fills, cancellation,
nonces."""

import pytest
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.market.orders import (
    BUY,
    ORDER_TYPE,
    ORDER_TYPEHASH,
    SLOT_SECONDS,
    default_meter_id,
    order_digest,
    payment,
    sign_order,
    typed_data,
)
from tests.fixtures.energy_market import (
    FUNDING,
    GRACE,
    PRICE,
    reverts_with,
    reverts_with_nested,
    same_address,
    single_event,
)

NO_SIGNATURE = b""

# OrderState enum
FILLABLE, FILLED, CANCELLED, EXPIRED, STALE_NONCE = range(5)


@pytest.fixture
def order_hash(market, chain):
    def _hash(order):
        return order_digest(order, chain.chain_id, market.address)

    return _hash


# ---------------------------------------------------------------- EIP-712 document


def test_order_type_and_domain_match_the_shared_typed_data(
    market, chain, make_order, alice, order_hash
):
    order = make_order(alice)
    doc = typed_data(order, chain.chain_id, market.address)

    assert market.ORDER_TYPE() == ORDER_TYPE
    assert market.ORDER_TYPEHASH() == ORDER_TYPEHASH
    assert market.DOMAIN_SEPARATOR() == encode_typed_data(full_message=doc).header
    domain = market.eip712Domain()
    assert (domain[1], domain[2], domain[3]) == ("GridLedger EnergyMarket", "1", chain.chain_id)
    assert same_address(domain[4], market)
    assert market.orderHash(order.as_tuple()) == order_hash(order)


def _uint(bits):
    return st.integers(min_value=0, max_value=2**bits - 1)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_order_digest_equals_the_contract_order_hash_and_eth_account(
    market, chain, make_order, alice, data
):
    """The fast digest (precomputed domain separator) is the contract's and the generic EIP-712
    one."""
    order = make_order(alice).replace(
        maker=to_checksum_address(data.draw(st.binary(min_size=20, max_size=20))),
        side=data.draw(_uint(1)),
        product=data.draw(_uint(1)),
        assetId=data.draw(_uint(256)),
        meterId=data.draw(st.binary(min_size=32, max_size=32)),
        quantityWh=data.draw(_uint(128)),
        price=data.draw(_uint(128)),
        deliveryStart=data.draw(_uint(64)),
        deliveryEnd=data.draw(_uint(64)),
        expiry=data.draw(_uint(64)),
        nonce=data.draw(_uint(64)),
        salt=data.draw(_uint(256)),
    )
    digest = order_digest(order, chain.chain_id, market.address)
    signable = encode_typed_data(full_message=typed_data(order, chain.chain_id, market.address))
    assert digest == keccak(b"\x19" + signable.version + signable.header + signable.body)
    assert market.orderHash(order.as_tuple()) == digest


# ---------------------------------------------------------------- signed fills


def test_signed_sell_offer_is_filled_by_taker_into_escrowed_trade(
    market, gusd, make_order, sign, taker_meter, alice, bob, order_hash
):
    order = make_order(alice, quantity_wh=10_000)
    bob_before = gusd.balanceOf(bob)

    receipt = market.fillOrder(
        order.as_tuple(), sign(order, alice), 4_000, taker_meter(bob), sender=bob
    )

    log = single_event(receipt, market.TradeCreated)
    assert log.tradeId == 1
    assert log.sellOrderHash == order_hash(order)
    assert log.buyOrderHash == b"\x00" * 32
    seller, buyer, seller_meter, buyer_meter, qty, price, start, end, tol, pen, grace = log.trade
    assert same_address(seller, alice) and same_address(buyer, bob)
    assert (seller_meter, buyer_meter) == (order.meterId, taker_meter(bob))
    assert (qty, price, start, end) == (4_000, PRICE, order.deliveryStart, order.deliveryEnd)
    assert (tol, pen, grace) == (market.toleranceBps(), market.penaltyBps(), GRACE)
    assert log.payment == payment(4_000, PRICE) == 600_000
    assert gusd.balanceOf(bob) == bob_before - 600_000
    assert market.filled(order_hash(order)) == 4_000
    assert market.lastTradeId() == 1
    assert market.tradeStatus(1) == 1  # Open
    assert market.tradeRecord(1)[:31] == market.tradeHash(log.trade)[:31]


def test_signed_buy_bid_is_filled_by_seller_and_pulls_payment_from_maker(
    market, gusd, make_order, sign, taker_meter, alice, bob, order_hash
):
    bid = make_order(bob, side=BUY, quantity_wh=8_000)
    alice_before, bob_before = gusd.balanceOf(alice), gusd.balanceOf(bob)

    receipt = market.fillOrder(
        bid.as_tuple(), sign(bid, bob), 8_000, taker_meter(alice), sender=alice
    )

    log = single_event(receipt, market.TradeCreated)
    assert log.sellOrderHash == b"\x00" * 32 and log.buyOrderHash == order_hash(bid)
    assert same_address(log.trade[0], alice) and same_address(log.trade[1], bob)
    assert gusd.balanceOf(bob) == bob_before - payment(8_000, PRICE)
    assert gusd.balanceOf(alice) == alice_before


def test_fill_reverts_when_signed_by_someone_else(
    market, make_order, sign, taker_meter, alice, bob, carol, order_hash
):
    order = make_order(alice)
    with reverts_with(
        market.EnergyMarketInvalidSignature, orderHash=order_hash(order), maker=alice.address
    ):
        market.fillOrder(order.as_tuple(), sign(order, carol), 1_000, taker_meter(bob), sender=bob)


def test_fill_reverts_when_order_was_altered_after_signing(
    market, make_order, sign, taker_meter, alice, bob, order_hash
):
    order = make_order(alice)
    signature = sign(order, alice)
    cheaper = order.replace(price=order.price - 1)
    with reverts_with(
        market.EnergyMarketInvalidSignature, orderHash=order_hash(cheaper), maker=alice.address
    ):
        market.fillOrder(cheaper.as_tuple(), signature, 1_000, taker_meter(bob), sender=bob)


def test_partial_fills_then_overfill_reverts_with_remaining(
    market, make_order, sign, taker_meter, alice, bob, carol, order_hash
):
    order = make_order(alice, quantity_wh=10_000)
    signature = sign(order, alice)
    market.fillOrder(order.as_tuple(), signature, 6_000, taker_meter(bob), sender=bob)
    with reverts_with(
        market.EnergyMarketInsufficientRemaining,
        orderHash=order_hash(order),
        requested=5_000,
        remaining=4_000,
    ):
        market.fillOrder(order.as_tuple(), signature, 5_000, taker_meter(carol), sender=carol)

    market.fillOrder(order.as_tuple(), signature, 4_000, taker_meter(carol), sender=carol)

    assert market.filled(order_hash(order)) == 10_000
    with reverts_with(
        market.EnergyMarketInsufficientRemaining,
        orderHash=order_hash(order),
        requested=1,
        remaining=0,
    ):
        market.fillOrder(order.as_tuple(), signature, 1, taker_meter(bob), sender=bob)


def test_fill_reverts_when_order_expired(
    market, chain, make_order, sign, taker_meter, alice, bob, order_hash
):
    order = make_order(alice)
    signature = sign(order, alice)
    chain.pending_timestamp = order.expiry + 1
    with reverts_with(
        market.EnergyMarketOrderExpired, orderHash=order_hash(order), expiry=order.expiry
    ):
        market.fillOrder(order.as_tuple(), signature, 1_000, taker_meter(bob), sender=bob)


def test_fill_succeeds_at_expiry_second(
    market, chain, period, make_order, sign, taker_meter, alice, bob, order_hash
):
    order = make_order(alice, expiry=period[0] - 60)
    chain.pending_timestamp = order.expiry
    market.fillOrder(order.as_tuple(), sign(order, alice), 1_000, taker_meter(bob), sender=bob)
    assert market.filled(order_hash(order)) == 1_000


def test_fill_reverts_when_delivery_period_has_started(
    market, chain, period, make_order, sign, taker_meter, alice, bob, order_hash
):
    order = make_order(alice)
    chain.pending_timestamp = period[0]
    with reverts_with(
        market.EnergyMarketGateClosed, orderHash=order_hash(order), deliveryStart=period[0]
    ):
        market.fillOrder(order.as_tuple(), sign(order, alice), 1_000, taker_meter(bob), sender=bob)


def test_fill_succeeds_one_second_before_gate_closure(
    market, chain, period, make_order, sign, taker_meter, alice, bob, order_hash
):
    order = make_order(alice)
    chain.pending_timestamp = period[0] - 1
    market.fillOrder(order.as_tuple(), sign(order, alice), 1_000, taker_meter(bob), sender=bob)
    assert market.filled(order_hash(order)) == 1_000


def test_fill_reverts_when_taker_is_maker(market, make_order, sign, taker_meter, alice):
    order = make_order(alice)
    with reverts_with(market.EnergyMarketSelfTrade, maker=alice.address):
        market.fillOrder(
            order.as_tuple(), sign(order, alice), 1_000, taker_meter(alice), sender=alice
        )


def test_fill_reverts_on_zero_quantity(
    market, make_order, sign, taker_meter, alice, bob, order_hash
):
    order = make_order(alice)
    with reverts_with(market.EnergyMarketZeroQuantity, orderHash=order_hash(order)):
        market.fillOrder(order.as_tuple(), sign(order, alice), 0, taker_meter(bob), sender=bob)


@pytest.mark.parametrize(
    "shift", [(1, 0), (0, 1), (SLOT_SECONDS, 0)], ids=["start", "end", "empty"]
)
def test_fill_reverts_when_period_not_aligned(
    market, make_order, sign, taker_meter, period, alice, bob, shift
):
    start, end = period[0] + shift[0], period[1] + shift[1]
    order = make_order(alice, start=start, end=end, expiry=period[0])
    with reverts_with(market.EnergyMarketPeriodNotAligned, deliveryStart=start, deliveryEnd=end):
        market.fillOrder(order.as_tuple(), sign(order, alice), 1_000, taker_meter(bob), sender=bob)


def test_energy_fill_reverts_without_taker_meter(market, make_order, sign, alice, bob):
    order = make_order(alice)
    with reverts_with(market.EnergyMarketNotMeterOwner, account=bob.address, meterId=b"\0" * 32):
        market.fillOrder(order.as_tuple(), sign(order, alice), 1_000, b"\x00" * 32, sender=bob)


def test_fill_reverts_when_buyer_cannot_pay(
    market, gusd, make_order, sign, taker_meter, alice, stranger
):
    order = make_order(alice)
    # The token's own custom error bubbles up unchanged through SafeERC20.
    with reverts_with_nested(
        "ERC20InsufficientAllowance(address,uint256,uint256)",
        market.address,
        0,
        payment(1_000, PRICE),
    ):
        market.fillOrder(
            order.as_tuple(), sign(order, alice), 1_000, taker_meter(stranger), sender=stranger
        )


# ---------------------------------------------------------------- ERC-1271 wallets


@pytest.fixture
def wallet(project, market, gusd, owner, carol):
    """A contract wallet controlled by carol, funded and approved for the market."""
    wallet = project.ERC1271Wallet.deploy(carol, sender=owner)
    gusd.mint(wallet, FUNDING, sender=owner)
    wallet.execute(gusd, gusd.approve.encode_input(market, FUNDING), sender=carol)
    return wallet


def test_erc1271_wallet_bid_is_filled_with_owner_signature(
    market, gusd, wallet, make_order, sign, taker_meter, alice, carol, order_hash
):
    bid = make_order(wallet.address, side=BUY, quantity_wh=5_000)
    receipt = market.fillOrder(
        bid.as_tuple(), sign(bid, carol), 5_000, taker_meter(alice), sender=alice
    )

    log = single_event(receipt, market.TradeCreated)
    assert log.buyOrderHash == order_hash(bid) and same_address(log.trade[1], wallet)
    assert gusd.balanceOf(wallet) == FUNDING - payment(5_000, PRICE)


def test_erc1271_wallet_order_reverts_when_signed_by_non_owner(
    market, wallet, make_order, sign, taker_meter, alice, bob, order_hash
):
    bid = make_order(wallet.address, side=BUY)
    with reverts_with(
        market.EnergyMarketInvalidSignature, orderHash=order_hash(bid), maker=wallet.address
    ):
        market.fillOrder(bid.as_tuple(), sign(bid, bob), 1_000, taker_meter(alice), sender=alice)


def test_erc1271_wallet_returns_magic_value_only_for_owner(
    wallet, chain, market, make_order, carol, bob, order_hash
):
    order = make_order(wallet.address)
    digest = order_hash(order)
    assert wallet.isValidSignature(
        digest, sign_order(order, carol.private_key, chain.chain_id, market.address)
    ) == bytes.fromhex("1626ba7e")
    assert wallet.isValidSignature(
        digest, sign_order(order, bob.private_key, chain.chain_id, market.address)
    ) == bytes.fromhex("ffffffff")


def test_erc1271_wallet_execute_is_owner_only(wallet, gusd, market, bob):
    with reverts_with(wallet.ERC1271WalletUnauthorized, caller=bob.address):
        wallet.execute(gusd, gusd.approve.encode_input(market, 1), sender=bob)


# ---------------------------------------------------------------- on-chain listings


def test_listed_order_is_filled_without_signature(
    market, make_order, taker_meter, alice, bob, order_hash
):
    order = make_order(alice)

    receipt = market.listOrder(order.as_tuple(), sender=alice)

    log = single_event(receipt, market.OrderListed)
    assert log.orderHash == order_hash(order) and same_address(log.maker, alice)
    assert tuple(log.order)[1:] == order.as_tuple()[1:] and same_address(log.order[0], alice)
    assert market.isListed(order_hash(order))
    fill = market.fillOrder(order.as_tuple(), NO_SIGNATURE, 2_500, taker_meter(bob), sender=bob)
    assert single_event(fill, market.TradeCreated).sellOrderHash == order_hash(order)
    assert market.filled(order_hash(order)) == 2_500


def test_fill_without_signature_reverts_when_not_listed(
    market, make_order, taker_meter, alice, bob, order_hash
):
    order = make_order(alice)
    with reverts_with(market.EnergyMarketOrderNotListed, orderHash=order_hash(order)):
        market.fillOrder(order.as_tuple(), NO_SIGNATURE, 1_000, taker_meter(bob), sender=bob)


def test_list_reverts_when_caller_is_not_maker(market, make_order, alice, bob):
    with reverts_with(
        market.EnergyMarketUnauthorizedMaker, caller=bob.address, maker=alice.address
    ):
        market.listOrder(make_order(alice).as_tuple(), sender=bob)


def test_list_reverts_when_already_listed(market, make_order, alice, order_hash):
    order = make_order(alice)
    market.listOrder(order.as_tuple(), sender=alice)
    with reverts_with(market.EnergyMarketOrderAlreadyListed, orderHash=order_hash(order)):
        market.listOrder(order.as_tuple(), sender=alice)


def test_list_reverts_when_expired(market, chain, make_order, alice, order_hash):
    order = make_order(alice)
    chain.pending_timestamp = order.expiry + 1
    with reverts_with(
        market.EnergyMarketOrderExpired, orderHash=order_hash(order), expiry=order.expiry
    ):
        market.listOrder(order.as_tuple(), sender=alice)


def test_list_reverts_on_stale_nonce_zero_quantity_bad_period_and_foreign_meter(
    market, make_order, period, alice, bob, order_hash
):
    stale = make_order(alice, nonce=1)
    with reverts_with(
        market.EnergyMarketStaleNonce, orderHash=order_hash(stale), orderNonce=1, currentNonce=0
    ):
        market.listOrder(stale.as_tuple(), sender=alice)
    empty = make_order(alice, quantity_wh=0)
    with reverts_with(market.EnergyMarketZeroQuantity, orderHash=order_hash(empty)):
        market.listOrder(empty.as_tuple(), sender=alice)
    skewed = make_order(alice, start=period[0] + 60)
    with reverts_with(
        market.EnergyMarketPeriodNotAligned, deliveryStart=period[0] + 60, deliveryEnd=period[1]
    ):
        market.listOrder(skewed.as_tuple(), sender=alice)
    meterless = make_order(alice, meter=b"\x00" * 32)
    with reverts_with(market.EnergyMarketNotMeterOwner, account=alice.address, meterId=b"\0" * 32):
        market.listOrder(meterless.as_tuple(), sender=alice)
    bobs_meter = default_meter_id(bob.address)
    borrowed = make_order(alice, meter=bobs_meter)
    with reverts_with(market.EnergyMarketNotMeterOwner, account=alice.address, meterId=bobs_meter):
        market.listOrder(borrowed.as_tuple(), sender=alice)


# ---------------------------------------------------------------- cancellation and nonces


def test_cancelled_listing_can_no_longer_be_filled_or_relisted(
    market, make_order, taker_meter, alice, bob, order_hash
):
    order = make_order(alice)
    market.listOrder(order.as_tuple(), sender=alice)

    receipt = market.cancelOrder(order.as_tuple(), sender=alice)

    log = single_event(receipt, market.OrderCancelled)
    assert log.orderHash == order_hash(order) and same_address(log.maker, alice)
    assert market.isCancelled(order_hash(order))
    with reverts_with(market.EnergyMarketOrderCancelled, orderHash=order_hash(order)):
        market.fillOrder(order.as_tuple(), NO_SIGNATURE, 1_000, taker_meter(bob), sender=bob)
    with reverts_with(market.EnergyMarketOrderCancelled, orderHash=order_hash(order)):
        market.listOrder(order.as_tuple(), sender=alice)


def test_cancelled_signed_order_reverts_on_fill(
    market, make_order, sign, taker_meter, alice, bob, order_hash
):
    order = make_order(alice)
    signature = sign(order, alice)
    market.fillOrder(order.as_tuple(), signature, 1_000, taker_meter(bob), sender=bob)
    market.cancelOrder(order.as_tuple(), sender=alice)
    with reverts_with(market.EnergyMarketOrderCancelled, orderHash=order_hash(order)):
        market.fillOrder(order.as_tuple(), signature, 1_000, taker_meter(bob), sender=bob)


def test_cancel_reverts_for_non_maker_and_when_already_cancelled(
    market, make_order, alice, bob, order_hash
):
    order = make_order(alice)
    with reverts_with(
        market.EnergyMarketUnauthorizedMaker, caller=bob.address, maker=alice.address
    ):
        market.cancelOrder(order.as_tuple(), sender=bob)
    market.cancelOrder(order.as_tuple(), sender=alice)
    with reverts_with(market.EnergyMarketOrderCancelled, orderHash=order_hash(order)):
        market.cancelOrder(order.as_tuple(), sender=alice)


def test_increment_nonce_invalidates_all_older_orders(
    market, make_order, sign, taker_meter, alice, bob, order_hash
):
    old = make_order(alice, salt=1)
    listed = make_order(alice, salt=2)
    market.listOrder(listed.as_tuple(), sender=alice)

    receipt = market.incrementNonce(sender=alice)

    log = single_event(receipt, market.NonceIncremented)
    assert same_address(log.maker, alice) and log.newNonce == 1
    assert market.nonces(alice) == 1
    with reverts_with(
        market.EnergyMarketStaleNonce, orderHash=order_hash(old), orderNonce=0, currentNonce=1
    ):
        market.fillOrder(old.as_tuple(), sign(old, alice), 1_000, taker_meter(bob), sender=bob)
    with reverts_with(
        market.EnergyMarketStaleNonce, orderHash=order_hash(listed), orderNonce=0, currentNonce=1
    ):
        market.fillOrder(listed.as_tuple(), NO_SIGNATURE, 1_000, taker_meter(bob), sender=bob)
    fresh = make_order(alice, nonce=1)
    market.fillOrder(fresh.as_tuple(), sign(fresh, alice), 1_000, taker_meter(bob), sender=bob)


# ---------------------------------------------------------------- status view


def test_order_status_follows_the_order_life_cycle(
    market, chain, make_order, sign, taker_meter, alice, bob, order_hash
):
    order = make_order(alice, quantity_wh=3_000)
    signature = sign(order, alice)

    def status():
        s = market.orderStatus(order.as_tuple())
        assert s.orderHash == order_hash(order)
        return s.state, s.filledWh, s.remainingWh

    assert status() == (FILLABLE, 0, 3_000)
    market.fillOrder(order.as_tuple(), signature, 1_000, taker_meter(bob), sender=bob)
    assert status() == (FILLABLE, 1_000, 2_000)
    market.fillOrder(order.as_tuple(), signature, 2_000, taker_meter(bob), sender=bob)
    assert status() == (FILLED, 3_000, 0)

    other = make_order(alice, salt=7)
    chain.mine(timestamp=other.expiry + 1)
    assert market.orderStatus(other.as_tuple()).state == EXPIRED
    market.incrementNonce(sender=alice)
    assert market.orderStatus(other.as_tuple()).state == STALE_NONCE
    market.cancelOrder(other.as_tuple(), sender=alice)
    assert market.orderStatus(other.as_tuple()).state == CANCELLED
    assert market.orderStatus(other.as_tuple()).listed is False

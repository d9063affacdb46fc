"""Meter ownership: an ENERGY trade only between accounts trading from their own meters (the
top 20 bytes of a meter id are its owner's address). Each attack here was accepted before."""

from backend.market.orders import BUY, SELL, default_meter_id, meter_id
from tests.fixtures.energy_market import reverts_with


def test_fill_refuses_an_offer_from_someone_elses_meter(
    market, make_order, sign, alice, bob, carol
):
    carols = default_meter_id(carol.address)  # public in every TradeCreated of carol
    offer = make_order(alice, side=SELL, meter=carols)

    with reverts_with(market.EnergyMarketNotMeterOwner, account=alice.address, meterId=carols):
        market.fillOrder(
            offer.as_tuple(), sign(offer, alice), 1_000, default_meter_id(bob.address), sender=bob
        )


def test_fill_refuses_a_taker_selling_from_someone_elses_meter(
    market, make_order, sign, alice, bob, carol
):
    bid = make_order(alice, side=BUY)
    carols = meter_id(carol.address, "meter:roof")

    with reverts_with(market.EnergyMarketNotMeterOwner, account=bob.address, meterId=carols):
        market.fillOrder(bid.as_tuple(), sign(bid, alice), 1_000, carols, sender=bob)


def test_fill_refuses_a_buyer_receiving_on_someone_elses_meter(
    market, make_order, sign, alice, bob, carol
):
    offer = make_order(alice, side=SELL)
    carols = default_meter_id(carol.address)

    with reverts_with(market.EnergyMarketNotMeterOwner, account=bob.address, meterId=carols):
        market.fillOrder(offer.as_tuple(), sign(offer, alice), 1_000, carols, sender=bob)


def test_match_refuses_either_side_on_someone_elses_meter(
    market, make_order, sign, operator, alice, bob, carol
):
    carols = default_meter_id(carol.address)
    honest_bid = make_order(bob, side=BUY, price=160_000)
    honest_offer = make_order(alice, side=SELL)
    squatting_offer = make_order(alice, side=SELL, meter=carols, salt=2)
    squatting_bid = make_order(bob, side=BUY, price=160_000, meter=carols, salt=2)

    with reverts_with(market.EnergyMarketNotMeterOwner, account=alice.address, meterId=carols):
        market.matchOrders(
            honest_bid.as_tuple(),
            sign(honest_bid, bob),
            squatting_offer.as_tuple(),
            sign(squatting_offer, alice),
            1_000,
            True,
            sender=operator,
        )
    with reverts_with(market.EnergyMarketNotMeterOwner, account=bob.address, meterId=carols):
        market.matchOrders(
            squatting_bid.as_tuple(),
            sign(squatting_bid, bob),
            honest_offer.as_tuple(),
            sign(honest_offer, alice),
            1_000,
            True,
            sender=operator,
        )

    receipt = market.matchOrders(
        honest_bid.as_tuple(),
        sign(honest_bid, bob),
        honest_offer.as_tuple(),
        sign(honest_offer, alice),
        1_000,
        True,
        sender=operator,
    )
    [created] = market.TradeCreated.from_receipt(receipt)
    assert created.trade[2:4] == [default_meter_id(alice.address), default_meter_id(bob.address)]

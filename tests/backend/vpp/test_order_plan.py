"""Planning a VPP's orders from a hand-built forecast and a schedule's battery headroom."""

from __future__ import annotations

import pytest

from backend.vpp.order_plan import Battery, Headroom, PlanInputs, battery_headroom, plan_orders

T0 = 1_796_083_200  # 2026-12-01T00:00Z, a slot boundary


def inputs(flexibility=None, **override) -> PlanInputs:
    """`flexibility` (slot → Wh): one battery bounded by its power only."""
    base = {
        "forecast_start": T0,
        "forecast_wh": [2_000, -1_500, 50, 0, -300, 4_000],
        "headroom": [Headroom("b1", power=flexibility)] if flexibility else [],
        "sell_price": {},
        "buy_price": {},
        "now": T0 - 60,
        "traded": set(),
        "min_wh": 100,
        "flex_share": 0.5,
        "default_price": 150_000,
    }
    return PlanInputs(**(base | override))


def summary(plans):
    return [(p.side, p.deliveryStart - T0, p.quantityWh, p.price) for p in plans]


def test_surplus_sells_shortfall_buys_dust_and_zero_are_skipped():
    assert summary(plan_orders(inputs())) == [
        ("sell", 0, 2_000, 150_000),
        ("buy", 900, 1_500, 150_000),
        ("buy", 3_600, 300, 150_000),
        ("sell", 4_500, 4_000, 150_000),
    ]


def test_a_share_of_the_flexibility_adds_to_offers_and_covers_shortfalls():
    plans = plan_orders(
        inputs(
            flexibility={T0: 1_001, T0 + 900: 1_001, T0 + 3_600: 500},
            sell_price={T0: 90_000},
            buy_price={T0 + 900: 210_000},
        )
    )
    # 2,000 + floor(0.5 x 1,001); 1,500 - floor(0.5 x 1,001) at the schedule's prices;
    # 300 - 0.5 x 500 < 100: none
    assert summary(plans) == [
        ("sell", 0, 2_500, 90_000),
        ("buy", 900, 1_000, 210_000),
        ("sell", 4_500, 4_000, 150_000),
    ]
    assert (plans[0].forecastWh, plans[0].flexibilityWh) == (2_000, 1_001)
    assert (plans[1].forecastWh, plans[1].flexibilityWh) == (-1_500, 1_001)


@pytest.mark.parametrize(
    ("flex_share", "offered", "bid"),
    [
        (0.0, 2_000, 1_500),  # the forecast alone: the shortfall is bought whole
        (0.5, 2_400, 1_100),  # half the headroom sold, half covers the shortfall
        (0.25, 2_200, 1_300),
        (1.0, 2_800, 700),  # all of it
    ],
)
def test_both_sides_count_the_same_share_of_the_flexibility(flex_share, offered, bid):
    plans = plan_orders(
        inputs(
            forecast_wh=[2_000, -1_500],
            flexibility={T0: 800, T0 + 900: 800},
            flex_share=flex_share,
        )
    )
    assert summary(plans) == [("sell", 0, offered, 150_000), ("buy", 900, bid, 150_000)]


def test_a_shortfall_the_counted_flexibility_exceeds_is_not_bought():
    plans = plan_orders(inputs(forecast_wh=[-500], flexibility={T0: 1_200}, flex_share=0.5))
    assert plans == []  # 500 - 600 < 0: the batteries' share covers it all


def test_closed_and_already_traded_slots_are_left_out():
    plans = plan_orders(inputs(now=T0 + 900, traded={(T0 + 4_500, "sell")}))
    assert summary(plans) == [("buy", 3_600, 300, 150_000)]  # slots 0, 900 at/before chain time


def test_battery_headroom_is_bounded_by_power_and_stored_energy():
    battery = Battery(max_discharge_w=4_000, min_soc_wh=500, discharge_efficiency=0.9)
    # slot 0: idle, power bounds it: 4 kW x 1/4 h = 1,000 Wh (stored: (5,500 - 500) x 0.9).
    # Slot 1: discharging 3 kW leaves 1 kW: 250 Wh. Slot 2: charging, 1,000 Wh of power but
    # only (700 - 500) x 0.9 = 180 Wh stored. Slot 3: below the minimum SoC: nothing.
    assert battery_headroom(battery, [0, 3_000, -2_000, 0], [5_500, 4_700, 700, 400]) == [
        1_000,
        250,
        180,
        0,
    ]


def test_blocks_net_their_quarter_hours_into_one_order_per_period():
    forecast = [1_000, 1_000, -500, 200, -800, -900, 100, 0, 3_000, 3_000, 3_000]  # 3 hours
    plans = plan_orders(
        inputs(
            forecast_wh=forecast,
            flexibility={T0 + 4_500: 400},
            sell_price={T0: 100_000, T0 + 900: 120_000},
            block_slots=4,
        )
    )
    # hour 0: 1,000 + 1,000 - 500 + 200 = 1,700 to sell at the mean of 100k, 120k, 150k, 150k;
    # hour 1: -800 - (900 - 0.5 x 400) + (100 + 0.5 x 0) = -1,400: a bid; hour 2 is incomplete
    assert summary(plans) == [("sell", 0, 1_700, 130_000), ("buy", 3_600, 1_400, 150_000)]
    assert (plans[1].deliveryEnd - plans[1].deliveryStart, plans[1].forecastWh) == (3_600, -1_600)
    assert plan_orders(inputs(forecast_wh=forecast, block_slots=4, now=T0)) == plan_orders(
        inputs(forecast_wh=forecast, block_slots=4, now=T0 + 900)
    )  # a block is traded only while all of it is open

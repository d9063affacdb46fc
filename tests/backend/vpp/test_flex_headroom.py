"""Sequential battery headroom: stored energy an order relies on is counted once across slots
and runs, split per battery, and what fills never exceeds what was committed."""

from __future__ import annotations

import random
import uuid

import pytest

from backend.vpp.flex_delivery import order_extras, patched_result
from backend.vpp.models import VppSchedule
from backend.vpp.order_plan import Headroom, PlanInputs, plan_orders
from backend.vpp.trading_models import VppOrder

T0 = 1_796_083_200  # 2026-12-01T00:00Z
SLOT = 900


def inputs(forecast, headroom, **override) -> PlanInputs:
    base = {
        "forecast_start": T0,
        "forecast_wh": forecast,
        "headroom": headroom,
        "sell_price": {},
        "buy_price": {},
        "now": T0 - 60,
        "traded": set(),
        "min_wh": 100,
        "flex_share": 1.0,
        "default_price": 150_000,
    }
    return PlanInputs(**(base | override))


def battery(name, slots, power, stored, committed=None) -> Headroom:
    starts = [T0 + n * SLOT for n in range(slots)]
    return Headroom(
        name,
        power=dict.fromkeys(starts, power),
        stored=dict(zip(starts, stored, strict=True)),
        committed=committed or {},
    )


def test_stored_energy_sold_in_one_slot_is_gone_from_the_later_ones():
    # 1,000 Wh a slot of spare power, but only 1,500 Wh stored above the minimum all day
    plans = plan_orders(inputs([2_000] * 3, [battery("b1", 3, 1_000, [1_500] * 3)]))
    assert [(p.quantityWh, p.flexWh) for p in plans] == [(3_000, 1_000), (2_500, 500), (2_000, 0)]
    assert [p.flexibilityWh for p in plans] == [1_000, 500, 0]
    assert [(f.resourceId, f.slot - T0, f.wh) for p in plans for f in p.flexSplit] == [
        ("b1", 0, 1_000),
        ("b1", SLOT, 500),
    ]


def test_a_later_slot_the_schedule_empties_bounds_an_earlier_one():
    # the schedule itself discharges down to the minimum by slot 2: nothing can go early
    plans = plan_orders(inputs([2_000] * 3, [battery("b1", 3, 1_000, [1_500, 800, 0])]))
    assert [p.flexWh for p in plans] == [0, 0, 0]


def test_orders_already_placed_keep_their_headroom():
    placed = {T0: 1_000}
    plans = plan_orders(inputs([2_000] * 2, [battery("b1", 2, 1_000, [1_500] * 2, placed)]))
    assert [p.flexWh for p in plans] == [0, 500]  # slot 0 is taken, 500 Wh stored are left


def test_the_headroom_is_split_across_batteries_roomiest_first():
    plans = plan_orders(
        inputs(
            [2_000],
            [battery("small", 1, 300, [5_000]), battery("big", 1, 1_000, [5_000])],
            flex_share=1.0,
        )
    )
    assert [(f.resourceId, f.wh) for f in plans[0].flexSplit] == [("big", 1_000), ("small", 300)]
    assert plans[0].quantityWh == 3_300


def test_a_shortfall_relies_only_on_what_it_needs():
    plans = plan_orders(inputs([-600, 2_000], [battery("b1", 2, 1_000, [1_000] * 2)]))
    # slot 0 needs 400 + 600 = 1,000 counted but relies on 600 only (nothing to buy: skipped,
    # so nothing is committed); slot 1 may still sell the whole store
    assert [(p.side, p.quantityWh, p.flexWh) for p in plans] == [("sell", 3_000, 1_000)]


@pytest.mark.parametrize("seed", range(40))
def test_no_stored_wh_is_promised_twice_over_random_runs_and_fills(seed):
    rng = random.Random(seed)
    slots = 12
    headroom = [
        battery(
            f"b{n}",
            slots,
            rng.choice([250, 1_000, 1_250]),
            sorted((rng.randrange(0, 4_000) for _ in range(slots)), reverse=rng.random() < 0.5),
        )
        for n in range(rng.randrange(1, 4))
    ]
    limits = {
        h.resource_id: Headroom(h.resource_id, dict(h.power), dict(h.stored)) for h in headroom
    }
    committed: dict[str, dict[int, int]] = {}
    traded: set[tuple[int, str]] = set()
    for _ in range(3):  # later runs trade the slots earlier runs left, after their commitments
        current = [
            Headroom(h.resource_id, h.power, h.stored, dict(committed.get(h.resource_id, {})))
            for h in headroom
        ]
        forecast = [rng.randrange(-2_000, 3_000) for _ in range(slots)]
        plans = plan_orders(
            inputs(
                forecast,
                current,
                flex_share=rng.choice([0.25, 0.5, 1.0]),
                traded=traded,
                block_slots=rng.choice([1, 1, 4]),
            )
        )
        for plan in plans:
            traded.add((plan.deliveryStart, plan.side))
            assert plan.flexWh == sum(part.wh for part in plan.flexSplit) <= plan.flexibilityWh
            for part in plan.flexSplit:
                slots_of = committed.setdefault(part.resourceId, {})
                slots_of[part.slot] = slots_of.get(part.slot, 0) + part.wh
            # a random fill never asks for more than the order committed
            order = VppOrder(
                vpp_id=uuid.uuid4(),
                order_hash="0x",
                side=plan.side,
                meter_id="0x",
                delivery_start=plan.deliveryStart,
                quantity_wh=int(plan.quantityWh),
                price=1,
                forecast_wh=plan.forecastWh,
                flexibility_wh=plan.flexibilityWh,
                flex_wh=plan.flexWh,
                flex_split=[p.model_dump() for p in plan.flexSplit],
            )
            fill = rng.randrange(0, int(plan.quantityWh) + 1)
            extra = sum(wh for s in order_extras(order, fill).values() for wh in s.values())
            assert extra <= plan.flexWh
            assert (
                sum(
                    wh
                    for s in order_extras(order, int(plan.quantityWh)).values()
                    for wh in s.values()
                )
                == plan.flexWh
            )
    for name, slots_of in committed.items():  # per battery: power per slot, store cumulatively
        limit, drawn = limits[name], 0
        for start in sorted(limit.power):
            drawn += slots_of.get(start, 0)
            assert slots_of.get(start, 0) <= limit.power[start]
            assert drawn <= limit.stored[start]


def test_a_patch_discharges_the_extra_and_lowers_the_planned_soc_from_then_on():
    parent = VppSchedule(
        vpp_id=uuid.uuid4(),
        requested_by=uuid.uuid4(),
        start=T0,
        status="optimal",
        cost=0,
        inputs={},
        result={
            "status": "completed",
            "allocation": [
                {"resourceId": "a", "setpointsW": [0, -2_000, 500], "socWh": [5_000, 5_500, 5_000]},
                {"resourceId": "b", "setpointsW": [0, 0, 0], "socWh": [1_000] * 3},
            ],
        },
    )
    result = patched_result(parent, {"a": {T0 + SLOT: 401, T0 + 2 * SLOT: 100}}, {"a": 0.5})
    assert result["allocation"] == [
        {"resourceId": "a", "setpointsW": [0, -2_000 + 1_604, 900], "socWh": [5_000, 4_698, 3_998]}
    ]  # 401 Wh in a quarter hour: 1,604 W less charging; the store loses 802, then 200 more
    assert parent.result["allocation"][0]["setpointsW"] == [0, -2_000, 500]  # left as it was

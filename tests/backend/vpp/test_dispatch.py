"""The dispatch LP: hand-checked small cases (one-hour slots, prices per kWh) and a property
test that every schedule respects every constraint of the model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.vpp.dispatch import (
    DispatchError,
    DispatchProblem,
    DispatchStatus,
    FlexibleLoad,
    Storage,
    optimize,
)

HOUR = 1.0


def battery(**override) -> Storage:
    return Storage(
        **{
            "id": "bat",
            "energy_capacity_wh": 10_000,
            "max_charge_w": 5_000,
            "max_discharge_w": 5_000,
            "initial_soc_wh": 0,
        }
        | override
    )


def two_slots(**override) -> DispatchProblem:
    """Cheap hour (10/kWh), dear hour (50/kWh), 5 kWh needed in the dear one, nothing sold."""
    return DispatchProblem(
        **{
            "buy_price": [10, 50],
            "sell_price": [0, 0],
            "demand_wh": [0, 5_000],
            "pv_wh": [0, 0],
            "slot_hours": HOUR,
        }
        | override
    )


def test_arbitrage_between_two_prices():
    plain = optimize(two_slots())
    shifted = optimize(two_slots(storage=[battery()]))
    assert plain.cost == pytest.approx(250)  # 5 kWh at 50
    assert shifted.cost == pytest.approx(50)  # bought at 10, stored, used at 50
    assert shifted.charge_wh["bat"] == pytest.approx([5_000, 0])
    assert shifted.discharge_wh["bat"] == pytest.approx([0, 5_000])
    assert shifted.setpoints_w() == {"bat": [-5_000, 5_000]}


def test_efficiency_losses_are_paid_for():
    lossy = battery(max_charge_w=10_000, charge_efficiency=0.9, discharge_efficiency=0.8)
    schedule = optimize(two_slots(demand_wh=[0, 3_600], storage=[lossy]))
    # 3.6 kWh out needs 3.6 / 0.8 = 4.5 kWh stored = 4.5 / 0.9 = 5 kWh bought
    assert schedule.import_wh == pytest.approx([5_000, 0])
    assert schedule.soc_wh["bat"] == pytest.approx([4_500, 0])
    assert schedule.cost == pytest.approx(50)


def test_soc_bounds_cap_what_is_stored():
    schedule = optimize(two_slots(storage=[battery(max_soc_wh=3_000)]))
    assert schedule.soc_wh["bat"].max() == pytest.approx(3_000)
    assert schedule.import_wh == pytest.approx([3_000, 2_000])
    assert schedule.cost == pytest.approx(3 * 10 + 2 * 50)


def test_the_store_ends_the_day_where_it_started():
    schedule = optimize(two_slots(storage=[battery(initial_soc_wh=4_000)], demand_wh=[0, 0]))
    # selling is worth nothing here, and the last SoC may not fall below the first
    assert schedule.soc_wh["bat"][-1] >= 4_000 - 1e-6 and schedule.cost == pytest.approx(0)


def test_infeasible_demand_is_unmet_at_the_penalty():
    schedule = optimize(two_slots(max_import_w=1_000, penalty_per_kwh=1_000))
    assert schedule.status == DispatchStatus.OPTIMAL
    assert schedule.unmet_wh == pytest.approx([0, 4_000])
    assert schedule.cost == pytest.approx(1 * 50 + 4 * 1_000)


def test_minimum_renewable_share_forces_storing_pv():
    problem = two_slots(
        buy_price=[30, 10],
        sell_price=[20, 0],
        demand_wh=[0, 2_000],
        pv_wh=[2_000, 0],
        storage=[battery()],
    )
    free = optimize(problem)
    assert free.export_wh[0] == pytest.approx(2_000)  # sell all PV at 20, buy back at 10
    assert free.cost == pytest.approx(-20)
    green = optimize(DispatchProblem(**{**problem.__dict__, "min_renewable_share": 0.5}))
    # import ≤ ½ of the 2 kWh consumed: store x of the PV with 2000 − x ≤ 1000
    assert green.charge_wh["bat"][0] == pytest.approx(1_000)
    assert green.import_wh[1] == pytest.approx(1_000)
    assert green.cost == pytest.approx(-1 * 20 + 1 * 10)
    assert green.cost > free.cost


def test_flexible_load_runs_in_the_cheapest_slots_of_its_window():
    load = FlexibleLoad(id="hp", energy_wh=3_000, max_w=2_000, window=[True, True, True, False])
    schedule = optimize(
        DispatchProblem(
            buy_price=[30, 10, 20, 1],
            sell_price=[0] * 4,
            demand_wh=[0] * 4,
            pv_wh=[0] * 4,
            loads=[load],
            slot_hours=HOUR,
        )
    )
    assert schedule.load_wh["hp"] == pytest.approx([0, 2_000, 1_000, 0])
    assert schedule.shortfall_wh["hp"] == pytest.approx(0)
    assert schedule.setpoints_w()["hp"] == [0, -2_000, -1_000, 0]


def test_ev_reaches_its_target_by_departure():
    ev = battery(
        id="ev",
        max_discharge_w=0,
        plugged=[True, True, False],
        target_slot=1,
        target_soc_wh=6_000,
        final_soc_wh=0,
    )
    schedule = optimize(
        DispatchProblem(
            buy_price=[50, 10, 1],
            sell_price=[0] * 3,
            demand_wh=[0] * 3,
            pv_wh=[0] * 3,
            storage=[ev],
            slot_hours=HOUR,
        )
    )
    assert schedule.soc_wh["ev"][1] == pytest.approx(6_000)
    assert schedule.charge_wh["ev"] == pytest.approx([1_000, 5_000, 0])  # 5 kW max per hour


def test_malformed_problems_are_refused():
    with pytest.raises(DispatchError, match="slots"):
        optimize(two_slots(pv_wh=[0]))
    with pytest.raises(DispatchError, match="min_soc"):
        optimize(two_slots(storage=[battery(initial_soc_wh=20_000)]))


# ------------------------------------------------------------------ property test


@st.composite
def problems(draw) -> DispatchProblem:
    slots = draw(st.integers(2, 8))
    series = st.lists(st.integers(0, 5_000), min_size=slots, max_size=slots)
    prices = st.lists(st.integers(-5, 100), min_size=slots, max_size=slots)
    mask = st.lists(st.booleans(), min_size=slots, max_size=slots)
    storage = []
    for i in range(draw(st.integers(0, 3))):
        capacity = draw(st.integers(1_000, 20_000))
        low = draw(st.integers(0, capacity // 4))
        top = draw(st.integers(capacity // 2, capacity))
        storage.append(
            Storage(
                id=f"s{i}",
                energy_capacity_wh=capacity,
                max_charge_w=draw(st.integers(0, 10_000)),
                max_discharge_w=draw(st.integers(0, 10_000)),
                initial_soc_wh=draw(st.integers(low, top)),
                min_soc_wh=low,
                max_soc_wh=top,
                charge_efficiency=draw(st.floats(0.5, 1)),
                discharge_efficiency=draw(st.floats(0.5, 1)),
                plugged=draw(st.none() | mask),
            )
        )
    loads = [
        FlexibleLoad(
            id=f"l{i}",
            energy_wh=draw(st.integers(0, 20_000)),
            max_w=draw(st.integers(0, 5_000)),
            window=draw(st.none() | mask),
        )
        for i in range(draw(st.integers(0, 2)))
    ]
    return DispatchProblem(
        buy_price=draw(prices),
        sell_price=draw(prices),
        demand_wh=draw(series),
        pv_wh=draw(series),
        storage=storage,
        loads=loads,
        min_renewable_share=draw(st.sampled_from([0.0, 0.3, 0.8])),
        penalty_per_kwh=draw(st.sampled_from([100.0, 10_000.0])),
        max_import_w=draw(st.none() | st.integers(0, 20_000)),
        max_export_w=draw(st.none() | st.integers(0, 20_000)),
        slot_hours=draw(st.sampled_from([0.25, 1.0])),
    )


TOL = 1e-3  # Wh: HiGHS's feasibility tolerance on values up to ~1e5


@settings(max_examples=60, deadline=None)
@given(problems())
def test_every_schedule_respects_every_constraint(problem):
    s = optimize(problem)
    assert s.status == DispatchStatus.OPTIMAL
    dt = problem.slot_hours
    demand, pv = np.array(problem.demand_wh, float), np.array(problem.pv_wh, float)
    for values in (s.import_wh, s.export_wh, s.unmet_wh, s.curtail_wh):
        assert (values >= -TOL).all()
    assert (s.unmet_wh <= demand + TOL).all() and (s.curtail_wh <= pv + TOL).all()
    if problem.max_import_w is not None:
        assert (s.import_wh <= problem.max_import_w * dt + TOL).all()
    if problem.max_export_w is not None:
        assert (s.export_wh <= problem.max_export_w * dt + TOL).all()
    supply = pv - s.curtail_wh + s.import_wh + s.unmet_wh
    use = demand + s.export_wh
    consumption = demand - s.unmet_wh
    local = pv - s.curtail_wh
    for st_ in problem.storage:
        c, d, soc = s.charge_wh[st_.id], s.discharge_wh[st_.id], s.soc_wh[st_.id]
        plugged = np.ones(len(c)) if st_.plugged is None else np.array(st_.plugged, float)
        assert (c >= -TOL).all() and (d >= -TOL).all()
        assert (c <= st_.max_charge_w * dt * plugged + TOL).all()
        assert (d <= st_.max_discharge_w * dt * plugged + TOL).all()
        before = np.concatenate([[st_.initial_soc_wh], soc[:-1]])
        expected = before + st_.charge_efficiency * c - d / st_.discharge_efficiency
        assert soc == pytest.approx(expected, abs=TOL * 10)
        assert (soc >= st_.min_soc_wh - TOL).all() and (soc <= st_.max_soc_wh + TOL).all()
        assert soc[-1] >= st_.initial_soc_wh - TOL
        supply, use, local = supply + d, use + c, local + d
    for load in problem.loads:
        f = s.load_wh[load.id]
        window = np.ones(len(f)) if load.window is None else np.array(load.window, float)
        assert (f >= -TOL).all() and (f <= load.max_w * dt * window + TOL).all()
        assert f.sum() + s.shortfall_wh[load.id] == pytest.approx(load.energy_wh, abs=TOL * 10)
        assert s.shortfall_wh[load.id] >= -TOL
        use, consumption = use + f, consumption + f
    assert supply == pytest.approx(use, abs=TOL * 10)
    assert (s.export_wh <= local + TOL * 10).all()
    share = problem.min_renewable_share
    if share:  # imports at most (1 − share) of what is finally consumed
        assert s.import_wh.sum() <= (1 - share) * consumption.sum() + TOL * 100


def test_a_reserve_keeps_room_for_discharge_orders_already_rely_on():
    # sell dear in hour 1 (charge at 10 in hour 0, sell at 50): the battery empties itself
    prices = {"buy_price": [10, 60, 60], "sell_price": [0, 50, 0], "demand_wh": [0, 0, 0]}
    problem = two_slots(**prices, pv_wh=[0, 0, 0], storage=[battery(initial_soc_wh=4_000)])
    free = optimize(problem)
    assert free.discharge_wh["bat"][1] == pytest.approx(5_000)
    # orders rely on 2 kWh beyond the schedule in hour 1: the plan leaves 2 kW of power and
    # keeps 2 kWh more stored from then on
    reserved = [0, 2_000, 0]
    kept = optimize(
        two_slots(
            **prices, pv_wh=[0, 0, 0], storage=[battery(initial_soc_wh=4_000, reserved_wh=reserved)]
        )
    )
    assert kept.discharge_wh["bat"][1] <= 3_000 + 1e-6
    assert all(kept.soc_wh["bat"][1:] >= 2_000 - 1e-6)
    # a reserve the store cannot hold is kept as far as it goes, at the penalty, not refused
    too_much = optimize(
        two_slots(
            **prices,
            pv_wh=[0, 0, 0],
            storage=[battery(initial_soc_wh=4_000, reserved_wh=[0, 20_000, 0])],
        )
    )
    assert too_much.status == DispatchStatus.OPTIMAL and too_much.discharge_wh["bat"][
        1
    ] == pytest.approx(0)

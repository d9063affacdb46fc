"""The VPP benchmark's pieces: the instance is feasible for the LP, the GA baseline's cost
model agrees with the LP's on a schedule both can express, and never beats the LP optimum."""

from __future__ import annotations

import numpy as np
import pytest

from backend.vpp.dispatch import DispatchStatus, optimize
from bench._vpp_ga import _parameters, evaluate, optimize_ga
from bench.vpp import instance


def test_the_lp_optimum_bounds_the_ga_from_below():
    problem = instance(resources=10, slots=96)
    lp = optimize(problem)
    ga = optimize_ga(problem, population=20, generations=5)
    assert lp.status == DispatchStatus.OPTIMAL and lp.unmet_wh.sum() == pytest.approx(0)
    assert lp.cost <= ga.cost


def test_idle_genome_costs_the_net_demand_plus_the_heat_pumps_left_unserved():
    problem = instance(resources=10, slots=96)
    idle = np.zeros((1, len(problem.storage) + len(problem.loads), 96))
    net = np.asarray(problem.demand_wh) - np.asarray(problem.pv_wh)
    energy = np.maximum(net, 0) @ (np.asarray(problem.buy_price) / 1000) - np.maximum(-net, 0) @ (
        np.asarray(problem.sell_price) / 1000
    )
    evs_short = sum(max(s.target_soc_wh - s.initial_soc_wh, 0) for s in problem.storage)
    unserved = sum(load.energy_wh for load in problem.loads) + evs_short
    expected = energy + problem.penalty_per_kwh / 1000 * unserved
    assert evaluate(problem, idle, _parameters(problem))[0] == pytest.approx(expected)

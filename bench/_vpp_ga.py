"""The seed's genetic algorithm (WIA-ENE-014 `VPPOptimizer`: population 100, 50 generations,
tournament selection, crossover, mutation, fitness = −cost − penalties), applied to the same
dispatch problem as the LP, as the benchmark's baseline only.

Genome: one gene per resource and slot in [−1, 1]: storage charges (< 0) or discharges (> 0)
at that share of its power limit, a flexible load draws |gene| of its limit. Decoding repairs
each schedule to the SoC bounds and a load's energy (it stops drawing once served); what the
repair cannot fix (a store ending below its final SoC, an EV below its target at departure,
a load left short) is penalised at the problem's `penalty_per_kwh`, like unmet demand in the
LP. Vectorised over the population.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from backend.vpp.dispatch import DispatchProblem

Array = NDArray[np.float64]


@dataclass
class GaResult:
    cost: float
    genome: Array


def _parameters(problem: DispatchProblem) -> dict[str, Array]:
    dt = problem.slot_hours
    st = problem.storage
    slots = len(problem.buy_price)

    def plugged(mask: object) -> Array:
        return np.ones(slots) if mask is None else np.asarray(mask, dtype=float)

    return {
        "charge": np.array([[s.max_charge_w * dt] for s in st])
        * np.array([plugged(s.plugged) for s in st]).reshape(len(st), slots),
        "discharge": np.array([[s.max_discharge_w * dt] for s in st])
        * np.array([plugged(s.plugged) for s in st]).reshape(len(st), slots),
        "eta_c": np.array([s.charge_efficiency for s in st]),
        "eta_d": np.array([s.discharge_efficiency for s in st]),
        "low": np.array([float(s.min_soc_wh) for s in st]),
        "high": np.array(
            [float(s.energy_capacity_wh if s.max_soc_wh is None else s.max_soc_wh) for s in st]
        ),
        "initial": np.array([float(s.initial_soc_wh) for s in st]),
        "final": np.array(
            [float(s.initial_soc_wh if s.final_soc_wh is None else s.final_soc_wh) for s in st]
        ),
        "target_slot": np.array([-1 if s.target_slot is None else s.target_slot for s in st]),
        "target": np.array([float(s.target_soc_wh) for s in st]),
        "load_max": np.array(
            [load.max_w * dt * (plugged(load.window)) for load in problem.loads]
        ).reshape(len(problem.loads), slots),
        "load_energy": np.array([float(load.energy_wh) for load in problem.loads]),
    }


def evaluate(problem: DispatchProblem, genomes: Array, p: dict[str, Array]) -> Array:
    """Cost of each genome (population × resources × slots) after repair, penalties included."""
    pop, _, slots = genomes.shape
    n_st = len(problem.storage)
    buy = np.asarray(problem.buy_price, float) / 1000
    sell = np.asarray(problem.sell_price, float) / 1000
    penalty = problem.penalty_per_kwh / 1000
    net = np.tile(np.asarray(problem.demand_wh, float) - np.asarray(problem.pv_wh, float), (pop, 1))
    soc = np.tile(p["initial"], (pop, 1))
    served = np.zeros((pop, len(problem.loads)))
    missed = np.zeros(pop)  # Wh below EV targets at their slots
    st_genes, load_genes = genomes[:, :n_st, :], np.abs(genomes[:, n_st:, :])
    for t in range(slots):
        gene = st_genes[:, :, t]
        want_c = np.where(gene < 0, -gene, 0.0) * p["charge"][:, t]
        want_d = np.where(gene > 0, gene, 0.0) * p["discharge"][:, t]
        c = np.minimum(want_c, (p["high"] - soc) / p["eta_c"])
        d = np.minimum(want_d, (soc - p["low"]) * p["eta_d"])
        soc = soc + p["eta_c"] * c - d / p["eta_d"]
        due = p["target_slot"] == t
        if due.any():
            missed += np.maximum(p["target"][due] - soc[:, due], 0).sum(axis=1)
        f = np.minimum(load_genes[:, :, t] * p["load_max"][:, t], p["load_energy"] - served)
        served += f
        net[:, t] += c.sum(axis=1) - d.sum(axis=1) + f.sum(axis=1)
    imports, exports = np.maximum(net, 0), np.maximum(-net, 0)
    cost = imports @ buy - exports @ sell
    cost += penalty * (np.maximum(p["final"] - soc, 0).sum(axis=1) + missed)
    cost += penalty * (p["load_energy"] - served).sum(axis=1)
    return np.asarray(cost, dtype=float)


def optimize_ga(
    problem: DispatchProblem,
    *,
    population: int = 100,
    generations: int = 50,
    mutation: float = 0.02,
    seed: int = 7,
) -> GaResult:
    rng = np.random.default_rng(seed)
    p = _parameters(problem)
    genes = (len(problem.storage) + len(problem.loads), len(problem.buy_price))
    pool = rng.uniform(-1, 1, (population, *genes))
    cost = evaluate(problem, pool, p)
    for _ in range(generations):
        # tournament selection (size 2), uniform crossover, Gaussian mutation, elitism of one
        a, b = rng.integers(0, population, (2, population))
        parents = np.where((cost[a] < cost[b])[:, None, None], pool[a], pool[b])
        mates = parents[rng.permutation(population)]
        children = np.where(rng.random(pool.shape) < 0.5, parents, mates)
        mutate = rng.random(pool.shape) < mutation
        children = np.clip(children + mutate * rng.normal(0, 0.3, pool.shape), -1, 1)
        children[0] = pool[np.argmin(cost)]
        pool, cost = children, evaluate(problem, children, p)
    best = int(np.argmin(cost))
    return GaResult(cost=float(cost[best]), genome=pool[best])

"""Optimal dispatch of a VPP's flexible resources over one day: a linear programme solved
with HiGHS (SciPy's `linprog(method="highs")`).

The model, per 15-minute slot t (energy in Wh per slot, prices per kWh):

    pv_t − curtail_t + Σ_r discharge_rt + import_t + unmet_t
        = demand_t + Σ_r charge_rt + Σ_l load_lt + export_t          (energy balance)
    soc_rt = soc_r,t−1 + η_c·charge_rt − discharge_rt / η_d             (storage dynamics)
    min_soc_r ≤ soc_rt ≤ max_soc_r,  soc_r,T−1 ≥ final_soc_r            (SoC bounds)
    charge_rt ≤ max_charge_w·Δt·plugged_rt,  discharge_rt ≤ max_discharge_w·Δt·plugged_rt
    soc_r at `target_slot` ≥ target_soc_r                               (EV departure)
    load_lt ≤ max_w·Δt·window_lt,  Σ_t load_lt + short_l = energy_l      (flexible loads)
    Σ_t import_t ≤ (1 − s)·Σ_t (demand_t − unmet_t + Σ_l load_lt)
                                          (renewable share s of the energy finally consumed)
    export_t ≤ pv_t − curtail_t + Σ_r discharge_rt       (no resale of grid energy)
    minimise Σ_t buy_t·import_t − sell_t·export_t + penalty·(Σ_t unmet_t + Σ_l short_l)

A store's `reserved_wh` is discharge that orders already rely on beyond any schedule
(backend/vpp/flex_delivery.py patches it in on top): the plan keeps room for it, softly, at
`penalty_per_kwh` per kWh it cannot keep:

    discharge_rt − spill_rt ≤ max_discharge_w·Δt·plugged_rt − reserved_rt
    soc_rt + short_rt ≥ min_soc_r + Σ_{j ≤ t} reserved_rj / η_d

Grid imports count as non-renewable, local PV (used or stored) as renewable; storage is not
final consumption (charging and discharging at once must not inflate the base), so imports that
cover storage losses count against the share. Unmet demand and
a flexible load's shortfall are allowed at `penalty_per_kwh`, so every instance is feasible.
Results are floats in Wh as the solver returns them; `Schedule.setpoints_w` rounds to W.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linprog
from scipy.sparse import coo_array, csr_array

from backend.core.errors import InvalidInput

SLOTS = 96
SLOT_HOURS = 0.25
FloatArray = NDArray[np.float64]


class DispatchError(InvalidInput):
    code = "dispatch-invalid"
    title = "The dispatch problem is malformed"


@dataclass(frozen=True)
class Storage:
    """A battery or an EV (behind its charger). `plugged` (per slot) says when it can charge
    or discharge; an EV wants at least `target_soc_wh` by `target_slot` (inclusive)."""

    id: str
    energy_capacity_wh: int
    max_charge_w: int
    max_discharge_w: int
    initial_soc_wh: int
    min_soc_wh: int = 0
    max_soc_wh: int | None = None  # None: the energy capacity
    final_soc_wh: int | None = None  # None: the initial SoC (no free energy from the store)
    charge_efficiency: float = 1.0
    discharge_efficiency: float = 1.0
    plugged: Sequence[bool] | None = None  # None: always
    target_slot: int | None = None
    target_soc_wh: int = 0
    reserved_wh: Sequence[float] | None = None  # per slot, see `DispatchProblem`


@dataclass(frozen=True)
class FlexibleLoad:
    """A load that must draw `energy_wh` within the slots of `window` (heat pump, pool pump,
    an EV charger without V2G), at most `max_w`."""

    id: str
    energy_wh: int
    max_w: int
    window: Sequence[bool] | None = None  # None: any slot


@dataclass(frozen=True)
class DispatchProblem:
    buy_price: Sequence[float]  # per kWh imported, each slot
    sell_price: Sequence[float]  # per kWh exported
    demand_wh: Sequence[float]  # inflexible consumption forecast
    pv_wh: Sequence[float]  # renewable generation forecast
    storage: Sequence[Storage] = ()
    loads: Sequence[FlexibleLoad] = ()
    min_renewable_share: float = 0.0
    penalty_per_kwh: float = 10_000.0
    max_import_w: float | None = None
    max_export_w: float | None = None
    slot_hours: float = SLOT_HOURS


class DispatchStatus(StrEnum):
    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"  # only when the renewable share cannot be met at all


@dataclass
class Schedule:
    status: DispatchStatus
    cost: float  # token units (price units × kWh), penalties included
    import_wh: FloatArray
    export_wh: FloatArray
    unmet_wh: FloatArray
    curtail_wh: FloatArray
    charge_wh: dict[str, FloatArray] = field(default_factory=dict)
    discharge_wh: dict[str, FloatArray] = field(default_factory=dict)
    soc_wh: dict[str, FloatArray] = field(default_factory=dict)
    load_wh: dict[str, FloatArray] = field(default_factory=dict)
    shortfall_wh: dict[str, float] = field(default_factory=dict)
    slot_hours: float = SLOT_HOURS

    def setpoints_w(self) -> dict[str, list[int]]:
        """Each resource's power per slot in W, positive feeding the grid."""
        found = {
            rid: [round(v) for v in (self.discharge_wh[rid] - charge) / self.slot_hours]
            for rid, charge in self.charge_wh.items()
        }
        for rid, drawn in self.load_wh.items():
            found[rid] = [round(-v) for v in drawn / self.slot_hours]
        return found


class _Layout:
    """Column indices of the LP's variables, allocated in blocks."""

    def __init__(self) -> None:
        self.size = 0
        self.lower: list[FloatArray] = []
        self.upper: list[FloatArray] = []

    def block(self, n: int, upper: FloatArray | float, lower: float = 0.0) -> NDArray[np.int64]:
        start = self.size
        self.size += n
        self.lower.append(np.full(n, lower))
        self.upper.append(np.broadcast_to(np.asarray(upper, dtype=float), (n,)).copy())
        return np.arange(start, start + n)

    def bounds(self) -> FloatArray:
        return np.column_stack([np.concatenate(self.lower), np.concatenate(self.upper)])


class _Rows:
    """Sparse constraint rows accumulated as COO triplets."""

    def __init__(self) -> None:
        self.rows: list[NDArray[np.int64]] = []
        self.cols: list[NDArray[np.int64]] = []
        self.vals: list[FloatArray] = []
        self.rhs: list[FloatArray] = []
        self.count = 0

    def new(self, n: int, rhs: FloatArray | float) -> NDArray[np.int64]:
        rows = np.arange(self.count, self.count + n)
        self.count += n
        self.rhs.append(np.broadcast_to(np.asarray(rhs, dtype=float), (n,)).copy())
        return rows

    def add(
        self, rows: NDArray[np.int64], cols: NDArray[np.int64], value: float | FloatArray
    ) -> None:
        rows, cols = np.broadcast_arrays(rows, cols)
        self.rows.append(rows.ravel())
        self.cols.append(cols.ravel())
        self.vals.append(np.broadcast_to(np.asarray(value, dtype=float), rows.shape).ravel().copy())

    def matrix(self, width: int) -> tuple[csr_array | None, FloatArray | None]:
        if not self.count:
            return None, None
        shape = (self.count, width)
        data = (np.concatenate(self.vals), (np.concatenate(self.rows), np.concatenate(self.cols)))
        return coo_array(data, shape=shape).tocsr(), np.concatenate(self.rhs)


def _mask(values: Sequence[bool] | None, slots: int, what: str) -> FloatArray:
    if values is None:
        return np.ones(slots)
    if len(values) != slots:
        raise DispatchError(f"{what} has {len(values)} slots, expected {slots}")
    return np.asarray(values, dtype=float)


def _series(values: Sequence[float], slots: int, what: str) -> FloatArray:
    if len(values) != slots:
        raise DispatchError(f"{what} has {len(values)} slots, expected {slots}")
    return np.asarray(values, dtype=float)


def _soft_upper(
    layout: _Layout,
    ub: _Rows,
    columns: NDArray[np.int64],
    bound: FloatArray,
    where: NDArray[np.bool_],
    sign: float = 1.0,
) -> NDArray[np.int64]:
    """sign·x_t − slack_t ≤ bound_t for the slots `where` holds; the slacks' columns."""
    count = int(where.sum())
    slack = layout.block(count, np.inf)
    rows = ub.new(count, bound[where])
    ub.add(rows, columns[where], sign)
    ub.add(rows, slack, -1.0)
    return slack


def check(problem: DispatchProblem) -> int:
    """The number of slots; DispatchError when the inputs do not fit together."""
    slots = len(problem.buy_price)
    if not slots:
        raise DispatchError("no slots")
    for name in ("sell_price", "demand_wh", "pv_wh"):
        _series(getattr(problem, name), slots, name)
    if not 0 <= problem.min_renewable_share <= 1:
        raise DispatchError("min_renewable_share must be within [0, 1]")
    for s in problem.storage:
        top = s.energy_capacity_wh if s.max_soc_wh is None else s.max_soc_wh
        if not 0 <= s.min_soc_wh <= s.initial_soc_wh <= top <= s.energy_capacity_wh:
            raise DispatchError(f"{s.id}: need 0 <= min_soc <= initial_soc <= max_soc <= capacity")
        if not (0 < s.charge_efficiency <= 1 and 0 < s.discharge_efficiency <= 1):
            raise DispatchError(f"{s.id}: efficiencies must be within (0, 1]")
        if s.target_slot is not None and not 0 <= s.target_slot < slots:
            raise DispatchError(f"{s.id}: target_slot outside the horizon")
    return slots


def optimize(problem: DispatchProblem) -> Schedule:
    """The least-cost schedule (see the module docstring for the model)."""
    slots = check(problem)
    dt = problem.slot_hours
    buy = _series(problem.buy_price, slots, "buy_price") / 1000  # per Wh
    sell = _series(problem.sell_price, slots, "sell_price") / 1000
    demand = _series(problem.demand_wh, slots, "demand_wh")
    pv = _series(problem.pv_wh, slots, "pv_wh")
    penalty = problem.penalty_per_kwh / 1000
    inf = np.inf
    layout = _Layout()
    imp = layout.block(slots, inf if problem.max_import_w is None else problem.max_import_w * dt)
    exp = layout.block(slots, inf if problem.max_export_w is None else problem.max_export_w * dt)
    unmet = layout.block(slots, demand)
    curtail = layout.block(slots, pv)
    eq, ub = _Rows(), _Rows()
    balance = eq.new(slots, demand - pv)  # −curtail + Σd + imp + unmet − Σc − Σl − exp = D − PV
    eq.add(balance, curtail, -1.0)
    eq.add(balance, imp, 1.0)
    eq.add(balance, unmet, 1.0)
    eq.add(balance, exp, -1.0)
    charges, discharges, socs, loads, shorts = {}, {}, {}, {}, {}
    slacks: list[NDArray[np.int64]] = []  # reserves not kept, at the penalty
    for s in problem.storage:
        plugged = _mask(s.plugged, slots, f"{s.id}.plugged")
        top = float(s.energy_capacity_wh if s.max_soc_wh is None else s.max_soc_wh)
        c = layout.block(slots, s.max_charge_w * dt * plugged)
        d = layout.block(slots, s.max_discharge_w * dt * plugged)
        soc_low = np.full(slots, float(s.min_soc_wh))
        soc_low[-1] = max(
            soc_low[-1], float(s.initial_soc_wh if s.final_soc_wh is None else s.final_soc_wh)
        )
        if s.target_slot is not None:
            soc_low[s.target_slot] = max(soc_low[s.target_slot], float(s.target_soc_wh))
        if (soc_low > top).any():
            raise DispatchError(f"{s.id}: a SoC target above max_soc")
        soc = layout.block(slots, top)
        layout.lower[-1] = soc_low
        eq.add(balance, c, -1.0)
        eq.add(balance, d, 1.0)
        # soc_t − soc_{t−1} − η_c c_t + d_t/η_d = 0 (soc_{−1} = initial, moved to the rhs)
        rhs = np.zeros(slots)
        rhs[0] = s.initial_soc_wh
        dyn = eq.new(slots, rhs)
        eq.add(dyn, soc, 1.0)
        eq.add(dyn[1:], soc[:-1], -1.0)
        eq.add(dyn, c, -s.charge_efficiency)
        eq.add(dyn, d, 1.0 / s.discharge_efficiency)
        charges[s.id], discharges[s.id], socs[s.id] = c, d, soc
        if s.reserved_wh is not None:
            reserved = _series(s.reserved_wh, slots, f"{s.id}.reserved_wh")
            cap = s.max_discharge_w * dt * plugged
            slacks.append(_soft_upper(layout, ub, d, cap - reserved, reserved > 0))
            floor = s.min_soc_wh + np.cumsum(reserved) / s.discharge_efficiency
            slacks.append(_soft_upper(layout, ub, soc, -floor, floor > s.min_soc_wh, sign=-1.0))
    for load in problem.loads:
        window = _mask(load.window, slots, f"{load.id}.window")
        f = layout.block(slots, load.max_w * dt * window)
        short = layout.block(1, float(load.energy_wh))
        eq.add(balance, f, -1.0)
        total = eq.new(1, float(load.energy_wh))
        eq.add(total, f, 1.0)
        eq.add(total, short, 1.0)
        loads[load.id], shorts[load.id] = f, short
    resale = ub.new(slots, pv)  # exp + curtail − Σd ≤ PV
    ub.add(resale, exp, 1.0)
    ub.add(resale, curtail, 1.0)
    for d in discharges.values():
        ub.add(resale, d, -1.0)
    share = problem.min_renewable_share
    if share > 0:
        # Σ imp + (1−s) Σ unmet − (1−s) Σ load ≤ (1−s) Σ demand
        row = ub.new(1, (1 - share) * demand.sum())
        ub.add(row, imp, 1.0)
        ub.add(row, unmet, 1 - share)
        for f in loads.values():
            ub.add(row, f, -(1 - share))
    cost = np.zeros(layout.size)
    cost[imp] = buy
    cost[exp] = -sell
    cost[unmet] = penalty
    for short in shorts.values():
        cost[short] = penalty
    for slack in slacks:
        cost[slack] = penalty
    a_eq, b_eq = eq.matrix(layout.size)
    a_ub, b_ub = ub.matrix(layout.size)
    # sparse matrices and an (n, 2) bounds array: accepted by SciPy, not by its stubs
    arguments: dict[str, Any] = {
        "A_ub": a_ub,
        "b_ub": b_ub,
        "A_eq": a_eq,
        "b_eq": b_eq,
        "bounds": layout.bounds(),
    }
    solved = linprog(cost, method="highs", **arguments)
    if solved.status == 2:
        empty = np.zeros(slots)
        return Schedule(
            DispatchStatus.INFEASIBLE, float("inf"), empty, empty, empty, empty, slot_hours=dt
        )
    if solved.status != 0:
        raise DispatchError(f"HiGHS stopped: {solved.message}")
    x = solved.x
    return Schedule(
        status=DispatchStatus.OPTIMAL,
        cost=float(solved.fun),
        import_wh=x[imp],
        export_wh=x[exp],
        unmet_wh=x[unmet],
        curtail_wh=x[curtail],
        charge_wh={k: x[v] for k, v in charges.items()},
        discharge_wh={k: x[v] for k, v in discharges.items()},
        soc_wh={k: x[v] for k, v in socs.items()},
        load_wh={k: x[v] for k, v in loads.items()},
        shortfall_wh={k: float(x[v][0]) for k, v in shorts.items()},
        slot_hours=dt,
    )

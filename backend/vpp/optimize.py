"""`POST /v1/vpp/{id}/optimize`: turn the VPP's available members and the aggregator's prices
and forecasts into a dispatch problem (backend/vpp/dispatch.py), solve it, and store the
schedule with its inputs.

Members map by kind: batteries and EV chargers are stores (SoC from the request, else the
last reported one, else their minimum; an EV may bring plugged slots and a target), flexible
loads and heat pumps draw the request's `energyWh` within their window, PV enters through the
`pvWh` forecast only. Unavailable members are left out and get no setpoints. Discharge that
placed orders rely on beyond the schedule (backend/vpp/flex_delivery.py) is reserved in each
store (dispatch.py's `reserved_wh`, softly), so a re-plan does not undo commitments.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from backend.accounts.models import Account
from backend.chain import clock
from backend.core.config import Settings
from backend.core.errors import InvalidInput
from backend.resources.models import STORAGE_KINDS, DerResource, ResourceKind
from backend.vpp import dispatch
from backend.vpp.flex_delivery import Extras, committed_flex
from backend.vpp.models import VppSchedule
from backend.vpp.schemas import (
    GridSchedule,
    OptimizeRequest,
    OptimizeResult,
    ResourceAllocation,
    ResourcePlan,
)
from backend.vpp.services import members, run_by

SLOT_SECONDS = 900
LOAD_KINDS = frozenset({ResourceKind.FLEXIBLE_LOAD, ResourceKind.HEAT_PUMP})


def slot_start(start: datetime | None, settings: Settings, now: datetime | None = None) -> int:
    """`start` checked, or the next slot after `now` (by default the configured clock's: the
    chain's simulated time under `GRIDLEDGER_CLOCK=chain`, asked only when needed)."""
    if start is None:
        moment = now or clock.utc_now(settings)
        return (int(moment.timestamp()) // SLOT_SECONDS + 1) * SLOT_SECONDS
    if start.tzinfo is None:
        raise InvalidInput("start needs a time zone (UTC)")
    seconds = int(start.timestamp())
    if seconds % SLOT_SECONDS:
        raise InvalidInput("start must be on a 15-minute boundary")
    return seconds


def storage_of(
    resource: DerResource, plan: ResourcePlan, reserved: list[int] | None = None
) -> dispatch.Storage:
    low = resource.min_soc_wh or 0
    top = resource.max_soc_wh if resource.max_soc_wh is not None else resource.energy_capacity_wh
    initial = plan.initialSocWh if plan.initialSocWh is not None else resource.soc_wh
    initial = min(max(low if initial is None else initial, low), top or 0)
    ev = resource.kind == ResourceKind.EV_CHARGER
    return dispatch.Storage(
        id=str(resource.id),
        energy_capacity_wh=resource.energy_capacity_wh or 0,
        max_charge_w=resource.max_charge_w,
        max_discharge_w=resource.max_discharge_w,
        initial_soc_wh=initial,
        min_soc_wh=low,
        max_soc_wh=top,
        final_soc_wh=low if ev else None,  # an EV drives away with what it has
        charge_efficiency=resource.charge_efficiency,
        discharge_efficiency=resource.discharge_efficiency,
        plugged=plan.plugged,
        target_slot=plan.targetSlot,
        target_soc_wh=min(plan.targetSocWh, top or 0),
        reserved_wh=reserved,
    )


def reserved_per_slot(committed: Extras, start: int) -> dict[str, list[int]]:
    """Committed headroom (resource id → slot start → Wh) as a series per store from `start`."""
    found = {}
    for resource, slots in committed.items():
        series = [0] * dispatch.SLOTS
        for slot, wh in slots.items():
            if 0 <= (slot - start) // SLOT_SECONDS < dispatch.SLOTS:
                series[(slot - start) // SLOT_SECONDS] += wh
        found[resource] = series
    return found


def problem_for(
    resources: list[DerResource],
    request: OptimizeRequest,
    settings: Settings,
    reserved: dict[str, list[int]] | None = None,
) -> dispatch.DispatchProblem:
    """The dispatch problem; `reserved`: per store, discharge orders already rely on."""
    zeros = [0] * dispatch.SLOTS
    storage, loads = [], []
    for resource in resources:
        plan = request.resources.get(resource.id, ResourcePlan())
        if resource.kind in STORAGE_KINDS:
            storage.append(storage_of(resource, plan, (reserved or {}).get(str(resource.id))))
        elif resource.kind in LOAD_KINDS:
            loads.append(
                dispatch.FlexibleLoad(
                    id=str(resource.id),
                    energy_wh=plan.energyWh,
                    max_w=resource.max_charge_w,
                    window=plan.window,
                )
            )
    limits = request.constraints
    return dispatch.DispatchProblem(
        buy_price=request.buyPrice,
        sell_price=request.sellPrice or zeros,
        demand_wh=request.demandWh or zeros,
        pv_wh=request.pvWh or zeros,
        storage=storage,
        loads=loads,
        min_renewable_share=limits.minRenewable,
        penalty_per_kwh=float(settings.vpp_unmet_penalty_per_kwh),
        max_import_w=limits.maxImportW,
        max_export_w=limits.maxExportW,
    )


def renewable_share(problem: dispatch.DispatchProblem, schedule: dispatch.Schedule) -> float | None:
    consumed = sum(problem.demand_wh) - schedule.unmet_wh.sum()
    consumed += sum(v.sum() for v in schedule.load_wh.values())
    if consumed <= 0:
        return None
    return round(max(0.0, 1 - float(schedule.import_wh.sum()) / float(consumed)), 6)


def ints(values: Any) -> list[int]:
    return [round(float(v)) for v in values]


def optimize_vpp(
    session: Session,
    settings: Settings,
    account: Account,
    vpp_id: Any,
    request: OptimizeRequest,
    *,
    now: datetime | None = None,
) -> OptimizeResult:
    """Solve the day for the VPP `account` runs and store the schedule with its inputs."""
    vpp = run_by(session, account, vpp_id)
    start = slot_start(request.start, settings, now)
    resources = [r for r, _ in members(session, vpp) if r.available]
    unknown = set(request.resources) - {r.id for r in resources}
    if unknown:
        raise InvalidInput(
            "plans name resources that are not available members of this VPP",
            resources=sorted(str(u) for u in unknown),
        )
    committed = committed_flex(
        session, vpp.id, start, start + dispatch.SLOTS * SLOT_SECONDS
    )  # a re-plan keeps room for what placed orders rely on
    problem = problem_for(resources, request, settings, reserved_per_slot(committed, start))
    began = time.perf_counter()
    schedule = dispatch.optimize(problem)
    seconds = round(time.perf_counter() - began, 4)
    setpoints = schedule.setpoints_w()
    allocation = [
        ResourceAllocation(
            resourceId=r.id,
            type=ResourceKind(r.kind),
            setpointsW=setpoints.get(str(r.id), [0] * dispatch.SLOTS),
            socWh=ints(schedule.soc_wh[str(r.id)]) if str(r.id) in schedule.soc_wh else None,
            shortfallWh=round(schedule.shortfall_wh.get(str(r.id), 0.0)),
        )
        for r in resources
    ]
    completed = schedule.status == dispatch.DispatchStatus.OPTIMAL
    grid = GridSchedule(
        importWh=ints(schedule.import_wh),
        exportWh=ints(schedule.export_wh),
        unmetWh=ints(schedule.unmet_wh),
        curtailWh=ints(schedule.curtail_wh),
    )
    stored = VppSchedule(
        vpp_id=vpp.id,
        requested_by=account.id,
        start=start,
        slot_seconds=SLOT_SECONDS,
        status=schedule.status.value,
        cost=round(schedule.cost) if completed else 0,
        inputs={
            "request": request.model_dump(mode="json"),
            "penaltyPerKwh": problem.penalty_per_kwh,
            "members": [
                {"resourceId": str(r.id), "kind": r.kind, "socWh": r.soc_wh} for r in resources
            ],
            "reservedWh": {
                r: {str(s): wh for s, wh in slots.items()} for r, slots in committed.items()
            },
        },
        result={},
    )
    result = OptimizeResult(
        scheduleId=stored.id,
        vppId=vpp.id,
        status="completed" if completed else "infeasible",
        start=datetime.fromtimestamp(start, UTC),
        cost=stored.cost,
        renewableShare=renewable_share(problem, schedule) if completed else None,
        grid=grid,
        allocation=allocation,
        solveSeconds=seconds,
    )
    stored.result = result.model_dump(mode="json")
    session.add(stored)
    session.flush()
    return result

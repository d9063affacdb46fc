"""Delivering the headroom a VPP's orders rely on (beat task `vpp.deliver_flex`).

An order placed by backend/vpp/trading.py may rely on battery headroom beyond the schedule:
`vpp_orders.flex_split` says which battery discharges how many Wh in which slot. The batteries
follow their dispatched schedule only, so once the order trades the extra discharge goes down as
a PATCH schedule (`vpp_schedules.kind = 'patch'`, `parent_id` the plan it patches):

    due fill   = a sell: the Wh traded so far (the matcher's count or the indexer's mirror of the
                 chain, whichever is ahead: backend/market/order_state.py), at most its quantity;
                 a buy: its whole quantity once placed (the batteries cover the part of the
                 shortfall it does not buy, whether or not it fills)
    extra      = Σ orders, per battery and slot: ⌊part Wh · due fill / quantity⌋   (≤ committed)
    patch      = the latest completed plan covering the slot, each battery with extra:
                 setpoint + ⌈extra · 3600 / slot seconds⌉ W (more discharge or less charge),
                 planned SoC lowered by the extra drawn (÷ η_discharge) from that slot on

Patches are cumulative (every order of the plan's horizon counted, not only the new fill), so
the newest schedule a device holds is always complete; only batteries with extra get it, through
the downlink like any schedule (backend/vpp/downlink.py). Slots that have started are not
patched again. `vpp_orders.patched_fill_wh` records the fill each order's latest patch covers,
and every sweep compares the extra due with the covering plan's last patch: a sweep with
nothing new does nothing, and a re-plan (which reserves the committed discharge but does not
schedule it, backend/vpp/optimize.py) gets its patch on the next sweep.
"""

from __future__ import annotations

import copy
import math
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func
from sqlmodel import Session, col, select

from backend.core.config import Settings
from backend.market.models import SignedOrder
from backend.resources.models import DerResource
from backend.vpp import downlink
from backend.vpp.dispatch import SLOTS
from backend.vpp.models import ScheduleKind, Vpp, VppSchedule
from backend.vpp.trading_models import VppOrder
from indexer.models import MarketOrder

Extras = dict[str, dict[int, int]]  # resource id → slot start → Wh at the meter


def committed_flex(
    session: Session, vpp_id: uuid.UUID, since: int = 0, until: int | None = None
) -> Extras:
    """Headroom the VPP's placed orders rely on, whatever their fill, in [since, until)."""
    found: Extras = {}
    query = select(VppOrder.flex_split).where(
        VppOrder.vpp_id == vpp_id,
        col(VppOrder.flex_wh) > 0,
        col(VppOrder.delivery_start) >= since - 3_600,  # a block order's first slot
    )
    for split in session.exec(query).all():
        for part in split:
            if part["slot"] >= since and (until is None or part["slot"] < until):
                slots = found.setdefault(part["resourceId"], {})
                slots[part["slot"]] = slots.get(part["slot"], 0) + part["wh"]
    return found


def due_fill(order: VppOrder, traded: int) -> int:
    """The Wh of the order whose headroom the batteries must deliver (module docstring)."""
    return order.quantity_wh if order.side == "buy" else min(traded, order.quantity_wh)


def order_extras(order: VppOrder, fill: int) -> Extras:
    """The order's committed headroom for `fill` of its quantity, per battery and slot."""
    found: Extras = {}
    for part in order.flex_split:
        wh = part["wh"] * fill // order.quantity_wh if order.quantity_wh else 0
        if wh:
            slots = found.setdefault(part["resourceId"], {})
            slots[part["slot"]] = slots.get(part["slot"], 0) + wh
    return found


def add_extras(into: Extras, more: Extras) -> None:
    for resource, slots in more.items():
        target = into.setdefault(resource, {})
        for slot, wh in slots.items():
            target[slot] = target.get(slot, 0) + wh


def patched_result(
    parent: VppSchedule, extras: Extras, efficiency: dict[str, float]
) -> dict[str, Any]:
    """The parent's result with each battery that has extra discharge patched (module
    docstring); the other members are left out (they keep following the parent)."""
    result = copy.deepcopy(parent.result)
    allocation = []
    for plan in result.get("allocation", []):
        extra = extras.get(plan["resourceId"], {})
        if not any(extra.values()):
            continue
        setpoints, soc = plan["setpointsW"], plan.get("socWh")
        drawn = 0.0
        for n in range(len(setpoints)):
            wh = extra.get(parent.start + n * parent.slot_seconds, 0)
            setpoints[n] += math.ceil(wh * 3600 / parent.slot_seconds)
            drawn += wh / efficiency.get(plan["resourceId"], 1.0)
            if soc:
                soc[n] = round(soc[n] - drawn)
        allocation.append(plan)
    result["allocation"] = allocation
    return result


def patch_horizon(schedule: VppSchedule) -> tuple[int, int]:
    """[start, end) of the schedule's slots (unix s)."""
    allocation = schedule.result.get("allocation") or [{}]
    slots = len(allocation[0].get("setpointsW", [])) or SLOTS
    return schedule.start, schedule.start + slots * schedule.slot_seconds


def covering_plan(session: Session, vpp_id: uuid.UUID, slot: int) -> VppSchedule | None:
    """The VPP's latest completed plan whose horizon holds the slot (what its devices follow)."""
    for schedule in session.exec(
        select(VppSchedule)
        .where(
            VppSchedule.vpp_id == vpp_id,
            VppSchedule.kind == ScheduleKind.PLAN.value,
            col(VppSchedule.start) <= slot,
        )
        .order_by(col(VppSchedule.created_at).desc())
    ).all():
        if schedule.result.get("status") == "completed" and slot < patch_horizon(schedule)[1]:
            return schedule
    return None


def last_patch_extras(session: Session, parent: VppSchedule) -> dict[str, Any] | None:
    last = session.exec(
        select(VppSchedule)
        .where(VppSchedule.parent_id == parent.id)
        .order_by(col(VppSchedule.created_at).desc())
    ).first()
    return None if last is None else last.inputs.get("extraWh")


@dataclass(frozen=True)
class FlexReport:
    patches: int  # patch schedules stored and queued
    commands: int  # schedule commands queued for them


def orders_with_flex(session: Session, now: int) -> list[tuple[VppOrder, int]]:
    """Orders relying on headroom whose slot has not started, with their Wh traded: the
    matcher's count or the indexer's mirror of the chain, whichever is ahead (as
    backend/market/order_state.py reads it; an order filled on chain directly has no count)."""
    matched = func.coalesce(col(SignedOrder.matched_wh), 0)
    mirror = func.coalesce(col(MarketOrder.filled_wh), 0)
    rows = session.exec(
        select(VppOrder, case((mirror > matched, mirror), else_=matched))
        .outerjoin(SignedOrder, col(SignedOrder.order_hash) == col(VppOrder.order_hash))
        .outerjoin(MarketOrder, col(MarketOrder.order_hash) == col(VppOrder.order_hash))
        .where(col(VppOrder.flex_wh) > 0, col(VppOrder.delivery_start) > now)
    ).all()
    return [(order, int(traded or 0)) for order, traded in rows]


def deliver_flex(session: Session, settings: Settings, now: int) -> FlexReport:
    """Patch and queue the plans covering orders that rely on headroom and whose slot has not
    started, where the extra due differs from the plan's last patch: a new fill, or a re-plan
    the devices now follow without it (module docstring). Commits per VPP."""
    due: dict[uuid.UUID, dict[int, int]] = {}  # VPP → order id → due fill
    for order, traded in orders_with_flex(session, now):
        if order.id is not None:
            due.setdefault(order.vpp_id, {})[order.id] = due_fill(order, traded)
    patches = commands = 0
    for vpp_id, fills in due.items():
        session.exec(select(Vpp).where(Vpp.id == vpp_id).with_for_update()).one()
        made, queued = patch_vpp(session, settings, vpp_id, fills)
        session.commit()
        patches, commands = patches + made, commands + queued
    return FlexReport(patches=patches, commands=commands)


def patch_vpp(
    session: Session, settings: Settings, vpp_id: uuid.UUID, fills: dict[int, int]
) -> tuple[int, int]:
    """Patch each plan covering an order of `fills` (order id → due fill); the caller commits."""
    orders = session.exec(
        select(VppOrder).where(VppOrder.vpp_id == vpp_id, col(VppOrder.flex_wh) > 0)
    ).all()
    parents: dict[uuid.UUID, VppSchedule] = {}
    for order in orders:
        if order.id in fills:
            parent = covering_plan(session, vpp_id, order.delivery_start)
            if parent is not None:
                parents[parent.id] = parent
    made = queued = 0
    for parent in parents.values():
        horizon = patch_horizon(parent)
        extras: Extras = {}
        covered: dict[str, int] = {}
        for order in orders:
            if not horizon[0] <= order.delivery_start < horizon[1]:
                continue
            fill = fills.get(order.id or 0, order.patched_fill_wh)
            add_extras(extras, order_extras(order, fill))
            covered[order.order_hash] = fill
        stored = {r: {str(s): wh for s, wh in slots.items()} for r, slots in extras.items()}
        if stored != (last_patch_extras(session, parent) or {}):
            patch = store_patch(session, parent, extras, stored, covered)
            queued += len(downlink.queue_schedule(session, settings, patch))
            made += 1
        for order in orders:
            if order.id in fills and horizon[0] <= order.delivery_start < horizon[1]:
                order.patched_fill_wh = fills[order.id]
                session.add(order)
    return made, queued


def store_patch(
    session: Session,
    parent: VppSchedule,
    extras: Extras,
    stored: dict[str, dict[str, int]],
    covered: dict[str, int],
) -> VppSchedule:
    ids = [uuid.UUID(r) for r in extras]
    efficiency = {
        str(r.id): r.discharge_efficiency
        for r in session.exec(select(DerResource).where(col(DerResource.id).in_(ids))).all()
    }
    patch = VppSchedule(
        vpp_id=parent.vpp_id,
        requested_by=parent.requested_by,
        start=parent.start,
        slot_seconds=parent.slot_seconds,
        status=parent.status,
        cost=parent.cost,
        kind=ScheduleKind.PATCH.value,
        parent_id=parent.id,
        inputs={"parentId": str(parent.id), "extraWh": stored, "ordersFillWh": covered},
        result={},
    )
    patch.result = patched_result(parent, extras, efficiency) | {"scheduleId": str(patch.id)}
    session.add(patch)
    session.flush()
    return patch

"""Schedule following: did each resource do what its schedule asked, slot by slot?

For each dispatchable resource of a stored schedule and each 15-minute slot that has ended:
planned energy = setpoint (W) × slot length; actual energy = the mean of the resource's
`output` telemetry samples time-stamped inside the slot (W) × slot length (Wh, + fed to the
grid, − drawn from it, rounded). A slot is followed when |actual − planned| ≤ tolerance, the
tolerance being `vpp_adherence_tolerance` (default 10 %) of the resource's rated power over
the slot (a 5 kW battery: ± 125 Wh per quarter hour). A slot with no telemetry has no actual
and `followed: null` (unknown, not "not followed"); slots not yet over are left out.

Telemetry is what the device reports: it explains dispatch, it settles nothing (metered truth
stays with the members' meters).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from backend.accounts.models import Account
from backend.chain import clock
from backend.core.config import Settings
from backend.resources.models import DerResource, ResourceKind, TelemetryMetric, TelemetrySample
from backend.vpp.errors import ScheduleNotFound, VppAccessDenied
from backend.vpp.models import VppSchedule
from backend.vpp.schemas import Adherence, ResourceAdherence, SlotAdherence
from backend.vpp.services import get_vpp


def readable_schedule(
    session: Session, account: Account, vpp_id: uuid.UUID, schedule_id: uuid.UUID
) -> tuple[VppSchedule, set[uuid.UUID] | None]:
    """The schedule and the resources `account` may see in it: all (None) for the VPP's
    aggregator, their own for a member's owner; VppAccessDenied for anyone else."""
    vpp = get_vpp(session, vpp_id)
    schedule = session.get(VppSchedule, schedule_id)
    if schedule is None or schedule.vpp_id != vpp.id:
        raise ScheduleNotFound(f"no schedule {schedule_id} of VPP {vpp_id}")
    if vpp.aggregator_id == account.id:
        return schedule, None
    ids = [uuid.UUID(a["resourceId"]) for a in schedule.result.get("allocation", [])]
    own = set(
        session.exec(
            select(DerResource.id).where(
                col(DerResource.id).in_(ids), DerResource.owner_id == account.id
            )
        ).all()
    )
    if not own:
        raise VppAccessDenied(
            "only the VPP's aggregator and the owners of its resources read its schedules",
            vpp_id=str(vpp_id),
        )
    return schedule, own


def _mean_output(
    session: Session, resource_ids: list[uuid.UUID], start: int, end: int, slot_s: int
) -> dict[tuple[uuid.UUID, int], float]:
    """Mean reported output (W) per (resource, slot index) over [start, end)."""
    rows = session.exec(
        select(TelemetrySample.resource_id, TelemetrySample.at, TelemetrySample.value).where(
            col(TelemetrySample.resource_id).in_(resource_ids),
            TelemetrySample.metric == TelemetryMetric.OUTPUT.value,
            col(TelemetrySample.at) >= start,
            col(TelemetrySample.at) < end,
            col(TelemetrySample.value).is_not(None),
        )
    ).all()
    sums: dict[tuple[uuid.UUID, int], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for resource_id, at, value in rows:
        entry = sums[(resource_id, (at - start) // slot_s)]
        entry[0] += value or 0
        entry[1] += 1
    return {key: total / count for key, (total, count) in sums.items()}


def adherence(
    session: Session,
    settings: Settings,
    account: Account,
    vpp_id: uuid.UUID,
    schedule_id: uuid.UUID,
    *,
    now: datetime | None = None,
) -> Adherence:
    schedule, visible = readable_schedule(session, account, vpp_id, schedule_id)
    slot_s = schedule.slot_seconds
    now_s = int((now or clock.utc_now(settings)).timestamp())
    allocations = [
        a
        for a in schedule.result.get("allocation", [])
        if a["type"] != ResourceKind.PV
        and (visible is None or uuid.UUID(a["resourceId"]) in visible)
    ]
    slots = len(allocations[0]["setpointsW"]) if allocations else 0
    ended = max(0, min(slots, (now_s - schedule.start) // slot_s))
    ids = [uuid.UUID(a["resourceId"]) for a in allocations]
    resources = {
        r.id: r for r in session.exec(select(DerResource).where(col(DerResource.id).in_(ids)))
    }
    means = _mean_output(session, ids, schedule.start, schedule.start + ended * slot_s, slot_s)
    share = settings.vpp_adherence_tolerance
    hours = slot_s / 3600
    found = []
    for allocation, resource_id in zip(allocations, ids, strict=True):
        resource = resources[resource_id]
        tolerance = round(share * resource.capacity_w * hours)
        rows = []
        for index in range(ended):
            planned = round(allocation["setpointsW"][index] * hours)
            mean = means.get((resource_id, index))
            actual = None if mean is None else round(mean * hours)
            deviation = None if actual is None else actual - planned
            rows.append(
                SlotAdherence(
                    slot=index,
                    start=datetime.fromtimestamp(schedule.start + index * slot_s, UTC),
                    plannedWh=planned,
                    actualWh=actual,
                    deviationWh=deviation,
                    followed=None if deviation is None else abs(deviation) <= tolerance,
                )
            )
        found.append(
            ResourceAdherence(
                resourceId=resource_id,
                type=ResourceKind(resource.kind),
                toleranceWh=tolerance,
                measuredSlots=sum(r.followed is not None for r in rows),
                followedSlots=sum(r.followed is True for r in rows),
                absDeviationWh=sum(abs(r.deviationWh or 0) for r in rows),
                slots=rows,
            )
        )
    return Adherence(
        scheduleId=schedule.id,
        vppId=schedule.vpp_id,
        start=datetime.fromtimestamp(schedule.start, UTC),
        slotSeconds=slot_s,
        endedSlots=ended,
        tolerance=share,
        resources=found,
    )

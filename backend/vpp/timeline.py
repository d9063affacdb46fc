"""What the dashboard's VPP view plots over the latest forecast's day, per 15-minute slot:

- `forecastWh`: the stored forecast of the VPP's net output (backend/forecast);
- `actualWh`: the members' reported output (telemetry, averaged per slot, summed: what the
  devices say, shown, never paid);
- `scheduledWh`: the latest plan's net setpoints of its dispatchable members (storage,
  flexible loads), W × ¼ h, plus the extra discharge its latest patch sends for filled orders
  (backend/vpp/flex_delivery.py); `dispatchedWh`: those members' reported output.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
from pydantic import BaseModel
from sqlmodel import Session, col, select

from backend.forecast.history import Target, load
from backend.forecast.models import Quantity, StoredForecast, TargetKind
from backend.vpp.flex_delivery import last_patch_extras
from backend.vpp.models import ScheduleKind, VppSchedule
from backend.vpp.services import get_vpp, members

SLOT = 900
SLOTS = 96


class TimelineSlot(BaseModel):
    start: datetime
    forecastWh: int | None
    actualWh: int | None
    scheduledWh: int | None
    dispatchedWh: int | None


class VppTimeline(BaseModel):
    vppId: uuid.UUID
    forecastId: uuid.UUID | None
    scheduleId: uuid.UUID | None
    slots: list[TimelineSlot]


def _reported(session: Session, vpp_id: str, ids: list[uuid.UUID], start: int) -> list[int | None]:
    if not ids:
        return [None] * SLOTS
    target = Target(TargetKind.VPP, vpp_id, Quantity.OUTPUT_WH, resource_ids=tuple(ids))
    series = load(session, target, start=start, slots=SLOTS)
    return [None if np.isnan(v) else round(float(v)) for v in series]


def vpp_timeline(session: Session, vpp_id: uuid.UUID, *, now: int) -> VppTimeline:
    """The day of the latest forecast (or, without one, the day up to `now`)."""
    vpp = get_vpp(session, vpp_id)
    forecast = session.exec(
        select(StoredForecast)
        .where(
            StoredForecast.target_kind == TargetKind.VPP.value,
            StoredForecast.target_id == str(vpp.id),
        )
        .order_by(col(StoredForecast.created_at).desc())
    ).first()
    schedule = session.exec(
        select(VppSchedule)
        .where(VppSchedule.vpp_id == vpp.id, VppSchedule.kind == ScheduleKind.PLAN.value)
        .order_by(col(VppSchedule.created_at).desc())
    ).first()
    start = forecast.start if forecast else (now // SLOT - SLOTS + 1) * SLOT
    everyone = [r.id for r, _ in members(session, vpp)]
    planned: dict[int, int] = {}
    dispatchable: list[uuid.UUID] = []
    if schedule is not None:
        for plan in schedule.result.get("allocation", []):
            if plan.get("type") == "pv":
                continue  # PV follows the sun, not the schedule
            dispatchable.append(uuid.UUID(plan["resourceId"]))
            for n, watts in enumerate(plan["setpointsW"]):
                slot = schedule.start + n * schedule.slot_seconds
                planned[slot] = planned.get(slot, 0) + watts * schedule.slot_seconds // 3600
        for slots in (last_patch_extras(session, schedule) or {}).values():
            for slot, wh in slots.items():
                planned[int(slot)] = planned.get(int(slot), 0) + wh
    actual = _reported(session, str(vpp.id), everyone, start)
    dispatched = _reported(session, str(vpp.id), dispatchable, start)
    values = list(forecast.values) if forecast else []
    return VppTimeline(
        vppId=vpp.id,
        forecastId=forecast.id if forecast else None,
        scheduleId=schedule.id if schedule else None,
        slots=[
            TimelineSlot(
                start=datetime.fromtimestamp(start + n * SLOT, UTC),
                forecastWh=values[n] if n < len(values) else None,
                actualWh=actual[n],
                scheduledWh=planned.get(start + n * SLOT),
                dispatchedWh=dispatched[n],
            )
            for n in range(SLOTS)
        ],
    )

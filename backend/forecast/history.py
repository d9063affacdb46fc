"""Who may forecast what, and the stored history a forecast reads.

Access: a meter's history to its owner; a resource's to its owner or the aggregator of the VPP
it is in; a VPP's (output or demand) to its aggregator; a grid area's (summed over many homes)
to aggregators. Operators and admins read all. The history is one value per 15-minute slot
(NaN where nothing was stored); see `TargetKind` for which table and quantity each kind reads.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func
from sqlmodel import Session, col, select

from backend.accounts.models import Account, Role
from backend.forecast.errors import (
    ForecastAccessDenied,
    ForecastTargetNotFound,
    InsufficientHistory,
)
from backend.forecast.model import MIN_HISTORY_SLOTS, SLOT_SECONDS
from backend.forecast.models import Quantity, TargetKind
from backend.meters.models import Meter, MeterReading
from backend.resources.models import (
    DerResource,
    ResourceKind,
    ResourceStatus,
    TelemetryMetric,
    TelemetrySample,
)
from backend.vpp.models import Vpp, VppMembership

MAX_MISSING_SHARE = 0.1  # gaps are interpolated; more than this and we refuse to guess


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    id: str
    quantity: Quantity
    meter_ids: tuple[str, ...] = ()
    resource_ids: tuple[uuid.UUID, ...] = ()
    lat: float | None = None
    lng: float | None = None


def _reads_everything(account: Account) -> bool:
    return bool({Role.OPERATOR, Role.ADMIN} & set(account.roles or []))


def _located(resources: Sequence[DerResource]) -> tuple[float | None, float | None]:
    """The mean location of the resources that have one."""
    points = [(r.latitude, r.longitude) for r in resources if r.latitude is not None]
    if not points:
        return None, None
    return (
        float(np.mean([p[0] for p in points])),
        float(np.mean([p[1] for p in points if p[1] is not None] or [0.0])),
    )


def _vpp_of(session: Session, resource_id: uuid.UUID) -> Vpp | None:
    return session.exec(
        select(Vpp)
        .join(VppMembership, col(VppMembership.vpp_id) == col(Vpp.id))
        .where(VppMembership.resource_id == resource_id, col(VppMembership.left_at).is_(None))
    ).first()


def _active_resources(session: Session, *where: object) -> list[DerResource]:
    return list(
        session.exec(
            select(DerResource)
            .where(DerResource.status == ResourceStatus.ACTIVE.value, *where)  # type: ignore[arg-type]
            .order_by(col(DerResource.created_at), col(DerResource.id))
        ).all()
    )


def resolve(session: Session, account: Account, kind: TargetKind, target_id: str) -> Target:
    """The target with what its history is made of (ForecastTargetNotFound,
    ForecastAccessDenied)."""
    everything = _reads_everything(account)
    if kind == TargetKind.METER:
        meter = session.get(Meter, target_id)
        if meter is None:
            raise ForecastTargetNotFound(f"no meter {target_id}", target=target_id)
        if not everything and meter.owner_id != account.id:
            raise ForecastAccessDenied("only the meter's owner reads its history")
        behind = _active_resources(session, DerResource.meter_id == meter.meter_id)
        lat, lng = _located(behind)
        return Target(
            kind, target_id, Quantity.NET_IMPORT_WH, meter_ids=(target_id,), lat=lat, lng=lng
        )
    if kind == TargetKind.AREA:
        if not everything and Role.AGGREGATOR not in set(account.roles or []):
            raise ForecastAccessDenied("grid-area forecasts are for aggregators and operators")
        resources = _active_resources(session, DerResource.grid_area == target_id)
        if not resources:
            raise ForecastTargetNotFound(f"no active resource in area {target_id}")
        meters = tuple(sorted({r.meter_id for r in resources}))
        lat, lng = _located(resources)
        return Target(kind, target_id, Quantity.NET_IMPORT_WH, meter_ids=meters, lat=lat, lng=lng)
    try:
        key = uuid.UUID(target_id)
    except ValueError as exc:
        raise ForecastTargetNotFound(f"{target_id!r} is not a {kind} id") from exc
    if kind == TargetKind.RESOURCE:
        resource = session.get(DerResource, key)
        if resource is None:
            raise ForecastTargetNotFound(f"no resource {target_id}", target=target_id)
        vpp = _vpp_of(session, key)
        allowed = resource.owner_id == account.id or (vpp and vpp.aggregator_id == account.id)
        if not everything and not allowed:
            raise ForecastAccessDenied("only the owner or its VPP's aggregator")
        return Target(
            kind,
            target_id,
            Quantity.OUTPUT_WH,
            resource_ids=(key,),
            lat=resource.latitude,
            lng=resource.longitude,
        )
    vpp = session.get(Vpp, key)
    if vpp is None or vpp.dissolved_at is not None:
        raise ForecastTargetNotFound(f"no VPP {target_id}", target=target_id)
    if not everything and vpp.aggregator_id != account.id:
        raise ForecastAccessDenied("only the VPP's aggregator")
    members = list(
        session.exec(
            select(DerResource)
            .join(VppMembership, col(VppMembership.resource_id) == col(DerResource.id))
            .where(VppMembership.vpp_id == key, col(VppMembership.left_at).is_(None))
            .order_by(col(DerResource.id))
        ).all()
    )
    lat, lng = _located(members)
    demand = kind == TargetKind.VPP_DEMAND
    if kind == TargetKind.VPP_GENERATION:
        members = [r for r in members if r.kind == ResourceKind.PV]
    return Target(
        kind,
        target_id,
        Quantity.CONSUMPTION_WH if demand else Quantity.OUTPUT_WH,
        meter_ids=tuple(sorted({r.meter_id for r in members})) if demand else (),
        resource_ids=tuple(r.id for r in members),
        lat=lat,
        lng=lng,
    )


def load(
    session: Session, target: Target, *, start: int, slots: int, verified_only: bool = False
) -> np.ndarray:
    """Per-slot history of `target` over [start, start + slots × 15 min): NaN where empty."""
    if target.quantity == Quantity.CONSUMPTION_WH:
        net = _net_import(session, target.meter_ids, start, slots, verified_only)
        output = _output(session, target.resource_ids, start, slots)
        return np.maximum(net + np.nan_to_num(output), 0.0)  # NaN where the meters said nothing
    if target.meter_ids:
        return _net_import(session, target.meter_ids, start, slots, verified_only)
    return _output(session, target.resource_ids, start, slots)


def _net_import(
    session: Session, meter_ids: Sequence[str], start: int, slots: int, verified_only: bool
) -> np.ndarray:
    """The meters' summed import − export per slot (Wh), NaN where none reported."""
    series = np.full(slots, np.nan)
    if not meter_ids:
        return series
    end = start + slots * SLOT_SECONDS
    net = func.sum(
        func.coalesce(MeterReading.import_wh, 0) - func.coalesce(MeterReading.export_wh, 0)
    )
    query = (
        select(MeterReading.interval_start, net)
        .where(
            col(MeterReading.meter_id).in_(meter_ids),
            col(MeterReading.interval_start) >= start,
            col(MeterReading.interval_start) < end,
        )
        .group_by(col(MeterReading.interval_start))
    )
    if verified_only:
        query = query.where(col(MeterReading.verified).is_(True))
    for at, value in session.exec(query).all():
        series[(at - start) // SLOT_SECONDS] = float(value)
    return series


def _output(
    session: Session, resource_ids: Sequence[uuid.UUID], start: int, slots: int
) -> np.ndarray:
    """The resources' summed mean `output` per slot as energy (Wh), NaN where none reported."""
    series = np.full(slots, np.nan)
    if not resource_ids:
        return series
    end = start + slots * SLOT_SECONDS
    bucket = (col(TelemetrySample.at) - start) // SLOT_SECONDS
    rows = session.exec(
        select(TelemetrySample.resource_id, bucket, func.avg(TelemetrySample.value))
        .where(
            col(TelemetrySample.resource_id).in_(resource_ids),
            TelemetrySample.metric == TelemetryMetric.OUTPUT.value,
            col(TelemetrySample.at) >= start,
            col(TelemetrySample.at) < end,
            col(TelemetrySample.value).is_not(None),
        )
        .group_by(col(TelemetrySample.resource_id), bucket)
    ).all()
    for _resource, slot, watts in rows:
        index = int(slot)
        energy = float(watts) * SLOT_SECONDS / 3600
        series[index] = energy if np.isnan(series[index]) else series[index] + energy
    return series


def usable(series: np.ndarray) -> tuple[int, np.ndarray]:
    """(slots skipped before the first stored one, the history from there with its gaps
    interpolated); InsufficientHistory when shorter than 168 h or more than 10 % missing."""
    present = ~np.isnan(series)
    if not present.any():
        raise InsufficientHistory("no stored history", have=0, need=MIN_HISTORY_SLOTS)
    skipped = int(np.argmax(present))
    series = series[skipped:]
    present = ~np.isnan(series)
    have = int(present.sum())
    if len(series) < MIN_HISTORY_SLOTS or have < len(series) * (1 - MAX_MISSING_SHARE):
        raise InsufficientHistory(
            f"{have} of {len(series)} slots stored; need {MIN_HISTORY_SLOTS} slots (168 h) "
            f"with at most {MAX_MISSING_SHARE:.0%} missing",
            have=have,
            need=MIN_HISTORY_SLOTS,
        )
    index = np.arange(len(series))
    return skipped, np.interp(index, index[present], series[present])

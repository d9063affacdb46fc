"""Storage never sits behind the meter of a REC device.

REC issuance certifies a device's metered export as renewable generation; a battery or EV
charger behind that meter could discharge (grid-charged) energy that would be certified too.
So the resources API refuses storage on a meter carrying a REC device, the REC device API and
relay refuse a device on a meter with active storage, and issuance (which also sees devices a
wallet registered straight on chain) refuses every hour in which storage sat behind the meter.

A device counts whatever its status: pending, approved and suspended alike (the registry has no
terminal status, a suspended device can be re-approved by one registrar call, and its meter
stays bound to it for good). Only an active resource blocks registrations; a decommissioned one
no longer does, but issuance still refuses every hour that began before it was decommissioned
(`clock.utc_now`: the configured clock, wall time in production, the chain's simulated time
under `make run`, like the hours issuance judges). A resource moved between meters is
judged by where it sat during each hour (the kept moves, `ResourceMove`): its old meter's
hours are refused until the hour it left, its new meter's from the hour it arrived.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from backend.resources.errors import StorageBehindCertifiedMeter
from backend.resources.models import (
    STORAGE_KINDS,
    DerResource,
    ResourceKind,
    ResourceMove,
    ResourceStatus,
)
from indexer.models import Device

STORAGE_VALUES = tuple(kind.value for kind in STORAGE_KINDS)
HOUR = 3600


def device_on_meter(session: Session, meter_id: str) -> Device | None:
    """The REC device registered on `meter_id` (the registry allows one per meter)."""
    return session.exec(
        select(Device)
        .where(func.lower(Device.meter_id) == meter_id.lower())
        .order_by(col(Device.device_id))
    ).first()


def active_storage_on(session: Session, meter_id: str) -> DerResource | None:
    return session.exec(
        select(DerResource)
        .where(
            func.lower(DerResource.meter_id) == meter_id.lower(),
            col(DerResource.kind).in_(STORAGE_VALUES),
            DerResource.status == ResourceStatus.ACTIVE.value,
        )
        .order_by(col(DerResource.created_at), col(DerResource.id))
    ).first()


def refuse_storage_behind_device(session: Session, kind: ResourceKind, meter_id: str) -> None:
    """StorageBehindCertifiedMeter when a `kind` resource may not sit behind `meter_id`."""
    if kind not in STORAGE_KINDS:
        return
    device = device_on_meter(session, meter_id)
    if device is not None:
        raise StorageBehindCertifiedMeter(
            f"meter {meter_id} carries REC device {device.device_id} ({device.status}): "
            f"a {kind.value} must sit behind a meter of its own",
            meter_id=meter_id,
            device_id=device.device_id,
        )


def refuse_device_on_storage_meter(session: Session, meter_id: str) -> None:
    """StorageBehindCertifiedMeter when `meter_id` has an active battery or EV charger."""
    storage = active_storage_on(session, meter_id)
    if storage is not None:
        raise StorageBehindCertifiedMeter(
            f"meter {meter_id} has {storage.kind} resource {storage.id} behind it: "
            "decommission it or move it to a meter of its own before registering a REC device",
            meter_id=meter_id.lower(),
            resource_id=str(storage.id),
        )


@dataclass(frozen=True)
class Span:
    """A battery or EV charger sat behind a meter from `since` until `until` (epoch seconds,
    in the configured clock's time). `since` None: from its registration, and conservatively
    before it (the registry cannot know how long it was there unregistered); `until` None:
    still there."""

    since: int | None
    until: int | None


def storage_spans(session: Session, meter_id: str) -> list[Span]:
    """Every span in which a battery or EV charger sat behind `meter_id`: its current meter
    (until decommissioned) and each meter it was moved off (`ResourceMove`)."""
    meter = meter_id.lower()
    moved_here = select(ResourceMove.resource_id).where(
        or_(
            func.lower(ResourceMove.from_meter_id) == meter,
            func.lower(ResourceMove.to_meter_id) == meter,
        )
    )
    resources = session.exec(
        select(DerResource).where(
            col(DerResource.kind).in_(STORAGE_VALUES),
            or_(
                func.lower(DerResource.meter_id) == meter,
                col(DerResource.id).in_(moved_here),
            ),
        )
    ).all()
    moves: dict[uuid.UUID, list[ResourceMove]] = {}
    if resources:
        for move in session.exec(
            select(ResourceMove)
            .where(col(ResourceMove.resource_id).in_([r.id for r in resources]))
            .order_by(col(ResourceMove.moved_at), col(ResourceMove.id))
        ):
            moves.setdefault(move.resource_id, []).append(move)
    spans = []
    for resource in resources:
        since = None
        for move in moves.get(resource.id, []):
            moved_at = _epoch(move.moved_at)
            if move.from_meter_id.lower() == meter:
                spans.append(Span(since, moved_at))
            since = moved_at
        if resource.meter_id.lower() == meter:
            end = resource.decommissioned_at
            spans.append(Span(since, None if end is None else _epoch(end)))
    return spans


def storage_refuses(spans: list[Span], hour_start: int) -> bool:
    """True when the hour starting at `hour_start` may hold storage discharge: a span overlaps
    it (storage arrived before the hour ended and left after it began). Conservative on
    purpose: a wallet can register a device on chain behind storage, so no hour before a
    registered storage left counts, unless the registry shows it behind another meter then."""
    return any(
        (span.since is None or span.since < hour_start + HOUR)
        and (span.until is None or hour_start < span.until)
        for span in spans
    )


def _epoch(moment: datetime) -> int:
    return int(_aware(moment).timestamp())


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

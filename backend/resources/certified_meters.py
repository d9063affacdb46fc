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
(wall-clock UTC, which the production chain follows).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from backend.resources.errors import StorageBehindCertifiedMeter
from backend.resources.models import STORAGE_KINDS, DerResource, ResourceKind, ResourceStatus
from indexer.models import Device

STORAGE_VALUES = tuple(kind.value for kind in STORAGE_KINDS)


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


def storage_until(session: Session, meter_id: str) -> list[int | None]:
    """For every battery or EV charger ever behind `meter_id`, when it was decommissioned
    (epoch seconds; None: still active)."""
    ends = session.exec(
        select(DerResource.decommissioned_at).where(
            func.lower(DerResource.meter_id) == meter_id.lower(),
            col(DerResource.kind).in_(STORAGE_VALUES),
        )
    ).all()
    return [None if end is None else int(_aware(end).timestamp()) for end in ends]


def storage_refuses(until: list[int | None], hour_start: int) -> bool:
    """True when an hour starting at `hour_start` may hold storage discharge: storage is still
    behind the meter, or was until after the hour began. Conservative on purpose: a wallet can
    register a device on chain behind storage, so no hour before the storage left counts."""
    return any(end is None or hour_start < end for end in until)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

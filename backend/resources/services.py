"""Register, update and decommission DERs; read them for their owner, the directory and VPPs.

Guarantees: a resource always names a meter its owner owns (checked at registration and on
every meter change), and a battery or EV charger never one carrying a REC device
(`certified_meters.py`); every move is kept (`ResourceMove`) and audited; its limits fit its
kind and capacity (`check_limits`); only the owner writes; a decommissioned resource is kept
(history, schedules that named it) but never changes again and leaves the directory.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select

from backend.accounts.models import Account
from backend.audit import chain as audit
from backend.audit.chain import AuditAction
from backend.chain import clock
from backend.core.config import Settings
from backend.core.utc import utc_now
from backend.meters.broker_auth import mosquitto_hash
from backend.meters.services import owned_meter
from backend.resources.certified_meters import refuse_storage_behind_device
from backend.resources.errors import (
    ResourceAccessDenied,
    ResourceDecommissioned,
    ResourceLimitsInvalid,
    ResourceNotFound,
)
from backend.resources.models import (
    STORAGE_KINDS,
    Capability,
    DerResource,
    ResourceKind,
    ResourceMove,
    ResourceStatus,
)
from backend.resources.schemas import (
    Location,
    ResourceCreate,
    ResourcePublic,
    ResourceState,
    ResourceUpdate,
)
from backend.vpp.memberships import end_memberships
from backend.vpp.models import MembershipEnd

GENERATES_ONLY = frozenset({ResourceKind.PV})
CONSUMES_ONLY = frozenset(
    {ResourceKind.FLEXIBLE_LOAD, ResourceKind.HEAT_PUMP, ResourceKind.EV_CHARGER}
)


def default_limits(kind: ResourceKind, capacity_w: int) -> tuple[int, int]:
    """(max_charge_w, max_discharge_w) when the owner gives none: what the kind can do."""
    if kind in GENERATES_ONLY:
        return 0, capacity_w
    if kind in CONSUMES_ONLY:
        return capacity_w, 0
    return capacity_w, capacity_w


def check_limits(resource: DerResource) -> None:
    """ResourceLimitsInvalid unless the limits fit the kind, the capacity and the storage."""
    problems = []
    if resource.max_charge_w > resource.capacity_w:
        problems.append("max_charge_w exceeds capacity_w")
    if resource.max_discharge_w > resource.capacity_w:
        problems.append("max_discharge_w exceeds capacity_w")
    if resource.kind in GENERATES_ONLY and resource.max_charge_w:
        problems.append(f"a {resource.kind} resource cannot take energy (max_charge_w must be 0)")
    if resource.kind in (ResourceKind.FLEXIBLE_LOAD, ResourceKind.HEAT_PUMP) and (
        resource.max_discharge_w
    ):
        problems.append(f"a {resource.kind} cannot feed the grid (max_discharge_w must be 0)")
    if not resource.max_charge_w and not resource.max_discharge_w:
        problems.append("max_charge_w and max_discharge_w are both 0: nothing to dispatch")
    if resource.kind in STORAGE_KINDS:
        energy = resource.energy_capacity_wh
        if not energy:
            problems.append(f"a {resource.kind} needs energy_capacity_wh > 0")
        elif not (0 <= (resource.min_soc_wh or 0) <= (resource.max_soc_wh or 0) <= energy):
            problems.append("need 0 <= min_soc_wh <= max_soc_wh <= energy_capacity_wh")
    elif (
        resource.energy_capacity_wh is not None
        or resource.min_soc_wh is not None
        or resource.max_soc_wh is not None
    ):
        problems.append(f"a {resource.kind} has no storage: leave out energy and SoC bounds")
    if problems:
        raise ResourceLimitsInvalid("; ".join(problems), problems=problems)


def register_resource(session: Session, owner: Account, data: ResourceCreate) -> DerResource:
    """A new active resource behind `data.meter`, which `owner` must own."""
    meter = owned_meter(session, owner, data.meter)
    refuse_storage_behind_device(session, data.kind, meter.meter_id)
    charge, discharge = default_limits(data.kind, data.capacity_w)
    storage = data.kind in STORAGE_KINDS
    resource = DerResource(
        name=data.name,
        kind=data.kind.value,
        owner_id=owner.id,
        meter_id=meter.meter_id,
        grid_area=data.grid_area,
        latitude=data.location.lat if data.location else None,
        longitude=data.location.lng if data.location else None,
        capacity_w=data.capacity_w,
        energy_capacity_wh=data.energy_capacity_wh,
        max_charge_w=charge if data.max_charge_w is None else data.max_charge_w,
        max_discharge_w=discharge if data.max_discharge_w is None else data.max_discharge_w,
        min_soc_wh=data.min_soc_wh if data.min_soc_wh is not None else (0 if storage else None),
        max_soc_wh=data.max_soc_wh
        if data.max_soc_wh is not None
        else (data.energy_capacity_wh if storage else None),
        charge_efficiency=data.charge_efficiency,
        discharge_efficiency=data.discharge_efficiency,
        available=data.available,
        mqtt_password_hash=mosquitto_hash(data.mqtt_password) if data.mqtt_password else None,
    )
    check_limits(resource)
    session.add(resource)
    session.flush()
    return resource


def get_resource(session: Session, resource_id: uuid.UUID) -> DerResource:
    found = session.get(DerResource, resource_id)
    if found is None:
        raise ResourceNotFound(f"no resource {resource_id}", resource_id=str(resource_id))
    return found


def owned_resource(session: Session, account: Account, resource_id: uuid.UUID) -> DerResource:
    """The resource, when `account` owns it (ResourceAccessDenied otherwise)."""
    found = get_resource(session, resource_id)
    if found.owner_id != account.id:
        raise ResourceAccessDenied(
            f"resource {resource_id} belongs to another account", resource_id=str(resource_id)
        )
    return found


def writable_resource(session: Session, account: Account, resource_id: uuid.UUID) -> DerResource:
    """Owned and still active (ResourceDecommissioned otherwise)."""
    found = owned_resource(session, account, resource_id)
    if found.status == ResourceStatus.DECOMMISSIONED:
        raise ResourceDecommissioned(
            f"resource {resource_id} was decommissioned", resource_id=str(resource_id)
        )
    return found


def update_resource(
    session: Session,
    settings: Settings,
    account: Account,
    resource_id: uuid.UUID,
    data: ResourceUpdate,
) -> DerResource:
    """Apply the fields `data` sets; the result must still pass `check_limits`. A move to
    another meter is stamped with the configured clock (`record_move`)."""
    resource = writable_resource(session, account, resource_id)
    changes = data.model_dump(exclude_unset=True)
    if "meter" in changes:
        if changes["meter"] is None:
            raise ResourceLimitsInvalid("a resource must sit behind a meter")
        meter = owned_meter(session, account, changes.pop("meter"))
        refuse_storage_behind_device(session, ResourceKind(resource.kind), meter.meter_id)
        if meter.meter_id != resource.meter_id:
            record_move(session, account, resource, meter.meter_id, clock.utc_now(settings))
        resource.meter_id = meter.meter_id
    if "location" in changes:
        location = data.location
        resource.latitude = location.lat if location else None
        resource.longitude = location.lng if location else None
        changes.pop("location")
    for field, value in changes.items():
        if value is None and field not in {"energy_capacity_wh", "min_soc_wh", "max_soc_wh"}:
            raise ResourceLimitsInvalid(f"{field} cannot be null")
        setattr(resource, field, value)
    check_limits(resource)
    resource.updated_at = utc_now()
    session.add(resource)
    session.flush()
    return resource


def record_move(
    session: Session, by: Account, resource: DerResource, to_meter_id: str, at: datetime
) -> None:
    """Keep where the resource sat before (REC issuance judges each hour by it) and audit
    the move. `at` is the configured clock's now (`clock.utc_now`): under `make run` the chain's
    simulated time, which the hours issuance judges are in, runs ahead of the wall."""
    move = ResourceMove(
        resource_id=resource.id,
        from_meter_id=resource.meter_id,
        to_meter_id=to_meter_id,
        moved_at=at,
        moved_by=by.id,
    )
    session.add(move)
    audit.record(
        session,
        AuditAction.RESOURCE_MOVED,
        actor_id=by.id,
        subject=str(resource.id),
        details={"from": resource.meter_id, "to": to_meter_id, "kind": resource.kind},
    )


def decommission_resource(
    session: Session, settings: Settings, account: Account, resource_id: uuid.UUID
) -> DerResource:
    """Retire the resource for good: it leaves the directory and any VPP, and no longer
    changes. `decommissioned_at` and the memberships' `left_at` are the configured clock's now
    (REC issuance's storage spans and the VPP meter's membership spans are in its time)."""
    resource = writable_resource(session, account, resource_id)
    now = clock.utc_now(settings)
    end_memberships(session, MembershipEnd.DECOMMISSIONED, resource_id=resource.id, at=now)
    resource.status = ResourceStatus.DECOMMISSIONED.value
    resource.available = False
    resource.decommissioned_at = now
    resource.updated_at = utc_now()
    session.add(resource)
    session.flush()
    return resource


def list_owned(session: Session, account: Account) -> Sequence[DerResource]:
    return session.exec(
        select(DerResource)
        .where(DerResource.owner_id == account.id)
        .order_by(col(DerResource.created_at), col(DerResource.id))
    ).all()


def capability_filter(capability: Capability) -> ColumnElement[bool]:
    """SQL for `DerResource.capabilities()` containing `capability`."""
    if capability == Capability.GENERATION:
        return col(DerResource.max_discharge_w) > 0
    if capability == Capability.CONSUMPTION:
        return col(DerResource.max_charge_w) > 0
    if capability == Capability.STORAGE:
        return col(DerResource.kind).in_([k.value for k in STORAGE_KINDS])
    return col(DerResource.kind) != ResourceKind.PV.value


def discover(
    session: Session,
    *,
    kind: ResourceKind | None = None,
    grid_area: str | None = None,
    capability: Capability | None = None,
    available: bool | None = None,
    offset: int = 0,
    limit: int = 100,
) -> Sequence[DerResource]:
    """Active resources matching every filter given, oldest first (the directory's order)."""
    query = select(DerResource).where(DerResource.status == ResourceStatus.ACTIVE.value)
    if kind is not None:
        query = query.where(DerResource.kind == kind.value)
    if grid_area is not None:
        query = query.where(DerResource.grid_area == grid_area)
    if capability is not None:
        query = query.where(capability_filter(capability))
    if available is not None:
        query = query.where(DerResource.available == available)
    query = query.order_by(col(DerResource.created_at), col(DerResource.id))
    return session.exec(query.offset(offset).limit(limit)).all()


def state_of(resource: DerResource) -> ResourceState:
    return ResourceState(
        output=resource.output_w,
        soc=resource.soc_wh if resource.is_storage else None,
        status=ResourceStatus(resource.status),
        available=resource.available,
        timestamp=resource.state_at,
    )


def location_of(resource: DerResource) -> Location | None:
    if resource.latitude is None or resource.longitude is None:
        return None
    return Location(lat=resource.latitude, lng=resource.longitude)


def public_view(resource: DerResource) -> ResourcePublic:
    return ResourcePublic(
        **resource.model_dump(exclude={"latitude", "longitude", "output_w", "soc_wh", "state_at"}),
        location=location_of(resource),
        capabilities=resource.capabilities(),
        state=state_of(resource),
    )

"""Run VPPs: an aggregator creates one; resource owners join it (their consent, per resource)
and leave when they like; the aggregator may remove members or dissolve the VPP.

Guarantees: only an account with the `aggregator` role creates a VPP (checked at the API edge)
and only the VPP's own aggregator changes it; a resource joins only at its owner's request,
while active, inside the VPP's grid area, and into at most one VPP at a time (also a partial
unique index); ended memberships are kept with who ended them and when.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from backend.accounts.models import Account
from backend.chain import clock
from backend.core.config import Settings
from backend.core.utc import utc_now
from backend.resources.models import DerResource
from backend.resources.services import location_of, writable_resource
from backend.vpp.errors import (
    NotAMember,
    ResourceInAnotherVpp,
    ResourceOutsideVppArea,
    VppAccessDenied,
    VppNotFound,
)
from backend.vpp.memberships import end_memberships
from backend.vpp.models import MembershipEnd, Vpp, VppMembership
from backend.vpp.schemas import (
    MembershipPublic,
    VppCreate,
    VppPublic,
    VppResource,
    VppStatus,
    VppUpdate,
)


def create_vpp(session: Session, aggregator: Account, data: VppCreate) -> Vpp:
    vpp = Vpp(
        name=data.name,
        aggregator_id=aggregator.id,
        grid_area=data.gridArea,
        description=data.description,
    )
    session.add(vpp)
    session.flush()
    return vpp


def get_vpp(session: Session, vpp_id: uuid.UUID) -> Vpp:
    """A VPP that has not been dissolved (VppNotFound otherwise)."""
    vpp = session.get(Vpp, vpp_id)
    if vpp is None or vpp.dissolved_at is not None:
        raise VppNotFound(f"no VPP {vpp_id}", vpp_id=str(vpp_id))
    return vpp


def run_by(session: Session, account: Account, vpp_id: uuid.UUID) -> Vpp:
    """The VPP, when `account` is its aggregator (VppAccessDenied otherwise)."""
    vpp = get_vpp(session, vpp_id)
    if vpp.aggregator_id != account.id:
        raise VppAccessDenied(f"VPP {vpp_id} is run by another aggregator", vpp_id=str(vpp_id))
    return vpp


def list_vpps(session: Session) -> Sequence[Vpp]:
    return session.exec(
        select(Vpp)
        .where(col(Vpp.dissolved_at).is_(None))
        .order_by(col(Vpp.created_at), col(Vpp.id))
    ).all()


def update_vpp(session: Session, account: Account, vpp_id: uuid.UUID, data: VppUpdate) -> Vpp:
    vpp = run_by(session, account, vpp_id)
    for field, value in data.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(vpp, field, value)
    vpp.updated_at = utc_now()
    session.add(vpp)
    session.flush()
    return vpp


def dissolve_vpp(session: Session, settings: Settings, account: Account, vpp_id: uuid.UUID) -> Vpp:
    """DELETE: every member leaves; the VPP row stays for the history of its schedules.
    Memberships end at the configured clock's now (the VPP meter's membership spans)."""
    vpp = run_by(session, account, vpp_id)
    now = clock.utc_now(settings)
    end_memberships(session, MembershipEnd.DISSOLVED, vpp_id=vpp.id, at=now)
    vpp.dissolved_at = now
    vpp.updated_at = utc_now()
    session.add(vpp)
    session.flush()
    return vpp


def open_membership(session: Session, resource_id: uuid.UUID) -> VppMembership | None:
    return session.exec(
        select(VppMembership).where(
            VppMembership.resource_id == resource_id, col(VppMembership.left_at).is_(None)
        )
    ).first()


def join(
    session: Session, settings: Settings, owner: Account, vpp_id: uuid.UUID, resource_id: uuid.UUID
) -> VppMembership:
    """The owner puts their active resource into the VPP (their consent for this resource).
    `joined_at` is the configured clock's now: the VPP meter's delivery counts members by it."""
    vpp = get_vpp(session, vpp_id)
    resource = writable_resource(session, owner, resource_id)
    if vpp.grid_area is not None and resource.grid_area != vpp.grid_area:
        raise ResourceOutsideVppArea(
            f"resource {resource_id} is in {resource.grid_area}, the VPP in {vpp.grid_area}",
            resource_area=resource.grid_area,
            vpp_area=vpp.grid_area,
        )
    current = open_membership(session, resource_id)
    if current is not None:
        raise ResourceInAnotherVpp(
            f"resource {resource_id} is a member of VPP {current.vpp_id}; leave it first",
            vpp_id=str(current.vpp_id),
        )
    membership = VppMembership(
        vpp_id=vpp.id,
        resource_id=resource.id,
        consented_by=owner.id,
        joined_at=clock.utc_now(settings),
    )
    session.add(membership)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:  # a concurrent join of the same resource won
        raise ResourceInAnotherVpp(f"resource {resource_id} joined another VPP") from exc
    return membership


def leave(
    session: Session,
    settings: Settings,
    account: Account,
    vpp_id: uuid.UUID,
    resource_id: uuid.UUID,
) -> VppMembership:
    """The resource's owner withdraws consent, or the VPP's aggregator removes the resource."""
    vpp = get_vpp(session, vpp_id)
    membership = open_membership(session, resource_id)
    if membership is None or membership.vpp_id != vpp.id:
        raise NotAMember(f"resource {resource_id} is not a member of VPP {vpp_id}")
    resource = session.get(DerResource, resource_id)
    if resource is not None and resource.owner_id == account.id:
        how = MembershipEnd.LEFT
    elif vpp.aggregator_id == account.id:
        how = MembershipEnd.REMOVED
    else:
        raise VppAccessDenied(
            "only the resource's owner or the VPP's aggregator ends a membership",
            vpp_id=str(vpp_id),
        )
    membership.left_at = clock.utc_now(settings)
    membership.ended_by = how.value
    session.add(membership)
    session.flush()
    return membership


def members(session: Session, vpp: Vpp) -> Sequence[tuple[DerResource, VppMembership]]:
    """The VPP's current members with their memberships, in joining order."""
    rows = session.exec(
        select(DerResource, VppMembership)
        .join(VppMembership, col(VppMembership.resource_id) == col(DerResource.id))
        .where(VppMembership.vpp_id == vpp.id, col(VppMembership.left_at).is_(None))
        .order_by(col(VppMembership.joined_at), col(VppMembership.id))
    ).all()
    return [(r, m) for r, m in rows]


def member_view(resource: DerResource, membership: VppMembership) -> VppResource:
    storage = resource.is_storage and resource.energy_capacity_wh
    return VppResource.model_validate(
        {
            "id": resource.id,
            "name": resource.name,
            "type": resource.kind,
            "capacity": resource.capacity_w,
            "current": resource.output_w,
            "efficiency": round(resource.charge_efficiency * resource.discharge_efficiency, 6),
            "soc": round(resource.soc_wh / resource.energy_capacity_wh, 4)
            if storage and resource.soc_wh is not None and resource.energy_capacity_wh
            else None,
            "socWh": resource.soc_wh if storage else None,
            "energyCapacityWh": resource.energy_capacity_wh,
            "available": resource.available,
            "location": location_of(resource),
            "ownerId": resource.owner_id,
            "joinedAt": membership.joined_at,
        }
    )


def status_of(resources: Sequence[DerResource]) -> VppStatus:
    if not resources:
        return VppStatus.EMPTY
    return VppStatus.OPERATIONAL if all(r.available for r in resources) else VppStatus.DEGRADED


def vpp_view(session: Session, vpp: Vpp) -> VppPublic:
    """The VPP with its members and their aggregated capacity, output and status."""
    rows = members(session, vpp)
    resources = [r for r, _ in rows]
    stamps: list[datetime] = [vpp.updated_at, *(r.state_at for r in resources if r.state_at)]
    return VppPublic(
        vppId=vpp.id,
        name=vpp.name,
        description=vpp.description,
        aggregatorId=vpp.aggregator_id,
        gridArea=vpp.grid_area,
        capacity=sum(r.capacity_w for r in resources),
        energyCapacityWh=sum(r.energy_capacity_wh or 0 for r in resources),
        resources=[member_view(r, m) for r, m in rows],
        aggregatedOutput=sum(r.output_w or 0 for r in resources),
        status=status_of(resources),
        lastUpdate=max(stamps),
    )


def membership_view(membership: VppMembership) -> MembershipPublic:
    return MembershipPublic(
        vppId=membership.vpp_id,
        resourceId=membership.resource_id,
        consentedBy=membership.consented_by,
        joinedAt=membership.joined_at,
        leftAt=membership.left_at,
        endedBy=membership.ended_by,
    )

"""Virtual power plants (WIA-ENE-014 `/vpp`): aggregators run them, owners join with their
resources (consent per resource) and leave when they like."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from backend.accounts.models import Role
from backend.api.deps import Reader, SessionDep, SettingsDep, Trader, require_role
from backend.api.problem_docs import raises
from backend.core.errors import InvalidInput
from backend.resources.errors import (
    ResourceAccessDenied,
    ResourceDecommissioned,
    ResourceNotFound,
)
from backend.vpp import optimize, services
from backend.vpp.errors import (
    NotAMember,
    ResourceInAnotherVpp,
    ResourceOutsideVppArea,
    VppAccessDenied,
    VppNotFound,
)
from backend.vpp.schemas import (
    MembershipCreate,
    MembershipPublic,
    OptimizeRequest,
    OptimizeResult,
    VppCreate,
    VppPublic,
    VppResource,
    VppUpdate,
)

router = APIRouter(prefix="/vpp", tags=["vpp"])


@router.get("", response_model=list[VppPublic])
def list_vpps(session: SessionDep, account: Reader) -> list[VppPublic]:
    """Every VPP, with members, aggregated capacity, output and status (owners pick one)."""
    return [services.vpp_view(session, v) for v in services.list_vpps(session)]


@router.post(
    "",
    response_model=VppPublic,
    status_code=201,
    dependencies=[require_role(Role.AGGREGATOR)],
)
def create_vpp(data: VppCreate, session: SessionDep, account: Trader) -> VppPublic:
    """Create a VPP you run (aggregators); resources join it at their owners' request."""
    vpp = services.create_vpp(session, account, data)
    session.commit()
    session.refresh(vpp)
    return services.vpp_view(session, vpp)


@router.get("/{vpp_id}", response_model=VppPublic, responses=raises(VppNotFound))
def get_vpp(vpp_id: uuid.UUID, session: SessionDep, account: Reader) -> VppPublic:
    return services.vpp_view(session, services.get_vpp(session, vpp_id))


@router.put(
    "/{vpp_id}",
    response_model=VppPublic,
    responses=raises(VppNotFound, VppAccessDenied),
    dependencies=[require_role(Role.AGGREGATOR)],
)
def update_vpp(
    vpp_id: uuid.UUID, data: VppUpdate, session: SessionDep, account: Trader
) -> VppPublic:
    """Rename or describe a VPP you run."""
    vpp = services.update_vpp(session, account, vpp_id, data)
    session.commit()
    session.refresh(vpp)
    return services.vpp_view(session, vpp)


@router.delete(
    "/{vpp_id}",
    status_code=204,
    responses=raises(VppNotFound, VppAccessDenied),
    dependencies=[require_role(Role.AGGREGATOR)],
)
def delete_vpp(vpp_id: uuid.UUID, session: SessionDep, account: Trader) -> Response:
    """Dissolve a VPP you run: every member leaves (the record is kept for its history)."""
    services.dissolve_vpp(session, account, vpp_id)
    session.commit()
    return Response(status_code=204)


@router.get("/{vpp_id}/resources", response_model=list[VppResource], responses=raises(VppNotFound))
def list_members(vpp_id: uuid.UUID, session: SessionDep, account: Reader) -> list[VppResource]:
    """The VPP's member resources with their latest output and state of charge."""
    vpp = services.get_vpp(session, vpp_id)
    return [services.member_view(r, m) for r, m in services.members(session, vpp)]


@router.post(
    "/{vpp_id}/resources",
    response_model=MembershipPublic,
    status_code=201,
    responses=raises(
        VppNotFound,
        ResourceNotFound,
        ResourceAccessDenied,
        ResourceDecommissioned,
        ResourceInAnotherVpp,
        ResourceOutsideVppArea,
    ),
)
def join_vpp(
    vpp_id: uuid.UUID, data: MembershipCreate, session: SessionDep, account: Trader
) -> MembershipPublic:
    """Put a resource you own into the VPP: your consent to the aggregator dispatching it."""
    membership = services.join(session, account, vpp_id, data.resourceId)
    session.commit()
    session.refresh(membership)
    return services.membership_view(membership)


@router.delete(
    "/{vpp_id}/resources/{resource_id}",
    response_model=MembershipPublic,
    responses=raises(VppNotFound, NotAMember, VppAccessDenied),
)
def leave_vpp(
    vpp_id: uuid.UUID, resource_id: uuid.UUID, session: SessionDep, account: Trader
) -> MembershipPublic:
    """End a membership: the owner withdraws consent, or the aggregator removes the resource."""
    membership = services.leave(session, account, vpp_id, resource_id)
    session.commit()
    session.refresh(membership)
    return services.membership_view(membership)


@router.post(
    "/{vpp_id}/optimize",
    response_model=OptimizeResult,
    responses=raises(VppNotFound, VppAccessDenied, InvalidInput),
    dependencies=[require_role(Role.AGGREGATOR)],
)
def optimize_vpp(
    vpp_id: uuid.UUID,
    data: OptimizeRequest,
    session: SessionDep,
    settings: SettingsDep,
    account: Trader,
) -> OptimizeResult:
    """Least-cost 24 h schedule (96 slots) for the VPP's batteries, EV chargers and flexible
    loads at the given prices and forecasts (LP, HiGHS); stored with its inputs."""
    result = optimize.optimize_vpp(session, settings, account, vpp_id, data)
    session.commit()
    return result

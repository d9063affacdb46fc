"""Virtual power plants (WIA-ENE-014 `/vpp`): aggregators run them, owners join with their
resources (consent per resource) and leave when they like."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from backend.accounts.models import Role
from backend.api.deps import Reader, SessionDep, SettingsDep, Trader, require_role
from backend.api.problem_docs import raises
from backend.core.errors import InvalidInput
from backend.resources.errors import (
    ResourceAccessDenied,
    ResourceDecommissioned,
    ResourceNotFound,
)
from backend.vpp import adherence, downlink, optimize, services
from backend.vpp.errors import (
    NotAMember,
    ResourceInAnotherVpp,
    ResourceOutsideVppArea,
    ScheduleNotFound,
    VppAccessDenied,
    VppNotFound,
)
from backend.vpp.models import CommandState
from backend.vpp.schemas import (
    Adherence,
    CommandPublic,
    DispatchQueued,
    DispatchStatusPublic,
    MembershipCreate,
    MembershipPublic,
    OptimizeRequest,
    OptimizeResult,
    SetpointRequest,
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
def delete_vpp(
    vpp_id: uuid.UUID, session: SessionDep, settings: SettingsDep, account: Trader
) -> Response:
    """Dissolve a VPP you run: every member leaves (the record is kept for its history)."""
    services.dissolve_vpp(session, settings, account, vpp_id)
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
    vpp_id: uuid.UUID,
    data: MembershipCreate,
    session: SessionDep,
    settings: SettingsDep,
    account: Trader,
) -> MembershipPublic:
    """Put a resource you own into the VPP: your consent to the aggregator dispatching it."""
    membership = services.join(session, settings, account, vpp_id, data.resourceId)
    session.commit()
    session.refresh(membership)
    return services.membership_view(membership)


@router.delete(
    "/{vpp_id}/resources/{resource_id}",
    response_model=MembershipPublic,
    responses=raises(VppNotFound, NotAMember, VppAccessDenied),
)
def leave_vpp(
    vpp_id: uuid.UUID,
    resource_id: uuid.UUID,
    session: SessionDep,
    settings: SettingsDep,
    account: Trader,
) -> MembershipPublic:
    """End a membership: the owner withdraws consent, or the aggregator removes the resource."""
    membership = services.leave(session, settings, account, vpp_id, resource_id)
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


@router.get(
    "/{vpp_id}/schedule/{schedule_id}/adherence",
    response_model=Adherence,
    responses=raises(VppNotFound, ScheduleNotFound, VppAccessDenied),
)
def schedule_adherence(
    vpp_id: uuid.UUID,
    schedule_id: uuid.UUID,
    session: SessionDep,
    settings: SettingsDep,
    account: Reader,
) -> Adherence:
    """Planned vs reported energy per resource and ended slot, with the deviation and whether
    the slot was followed (within `vpp_adherence_tolerance` of rated power). The VPP's
    aggregator sees every resource, a member's owner their own."""
    return adherence.adherence(session, settings, account, vpp_id, schedule_id)


@router.post(
    "/{vpp_id}/schedule/{schedule_id}/dispatch",
    response_model=DispatchQueued,
    status_code=202,
    responses=raises(VppNotFound, VppAccessDenied, ScheduleNotFound, InvalidInput),
    dependencies=[require_role(Role.AGGREGATOR)],
)
def dispatch_schedule(
    vpp_id: uuid.UUID,
    schedule_id: uuid.UUID,
    session: SessionDep,
    settings: SettingsDep,
    account: Trader,
) -> DispatchQueued:
    """Send a stored schedule to the member devices (`…/command`, QoS 1; a configuration on
    `…/config` first where needed). Queued for the dispatcher; again: nothing new."""
    commands = downlink.dispatch_schedule(session, settings, account, vpp_id, schedule_id)
    session.commit()
    return DispatchQueued(vppId=vpp_id, commands=[downlink.command_view(c) for c in commands])


@router.post(
    "/{vpp_id}/resources/{resource_id}/setpoint",
    response_model=CommandPublic,
    status_code=202,
    responses=raises(VppNotFound, VppAccessDenied, NotAMember, InvalidInput),
    dependencies=[require_role(Role.AGGREGATOR)],
)
def send_setpoint(
    vpp_id: uuid.UUID,
    resource_id: uuid.UUID,
    data: SetpointRequest,
    session: SessionDep,
    settings: SettingsDep,
    account: Trader,
) -> CommandPublic:
    """One setpoint for a member until `until`, overriding its schedule meanwhile."""
    command = downlink.queue_setpoint(
        session, settings, account, vpp_id, resource_id, power_w=data.powerW, until=data.until
    )
    session.commit()
    return downlink.command_view(command)


@router.get(
    "/{vpp_id}/dispatch",
    response_model=DispatchStatusPublic,
    responses=raises(VppNotFound, VppAccessDenied),
)
def dispatch_status(
    vpp_id: uuid.UUID,
    session: SessionDep,
    account: Reader,
    state: Annotated[list[CommandState] | None, Query()] = None,
    scheduleId: Annotated[uuid.UUID | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> DispatchStatusPublic:
    """Commands sent to the VPP's devices and their acknowledgement: `late` (no
    acknowledgement within `vpp_ack_timeout_s`), `failed` (rejected or not publishable),
    `sent` (waiting), `acked`; counts by state. Filter by `state` (repeatable) and schedule."""
    return downlink.dispatch_status(
        session, account, vpp_id, states=state or (), schedule_id=scheduleId, limit=limit
    )

"""The DER registry: register, read, update and decommission resources (owner-only writes)."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter

from backend.api.deps import MeterDataAccount, Reader, SessionDep, SettingsDep
from backend.api.problem_docs import raises
from backend.meters.errors import MeterAccessDenied, MeterNotFound
from backend.resources import services
from backend.resources.errors import (
    ResourceAccessDenied,
    ResourceDecommissioned,
    ResourceLimitsInvalid,
    ResourceNotFound,
    StorageBehindCertifiedMeter,
)
from backend.resources.schemas import ResourceCreate, ResourcePublic, ResourceState, ResourceUpdate

router = APIRouter(prefix="/resources", tags=["resources"])
PropertyName = Literal["output", "soc", "status"]


@router.post(
    "",
    response_model=ResourcePublic,
    status_code=201,
    responses=raises(
        MeterNotFound, MeterAccessDenied, ResourceLimitsInvalid, StorageBehindCertifiedMeter
    ),
)
def register_resource(
    data: ResourceCreate, session: SessionDep, account: MeterDataAccount
) -> ResourcePublic:
    """Register a PV system, battery, EV charger, flexible load or heat pump behind a meter
    you own. Its Thing Description is then at `/v1/things/{id}`."""
    resource = services.register_resource(session, account, data)
    session.commit()
    session.refresh(resource)
    return services.public_view(resource)


@router.get("", response_model=list[ResourcePublic])
def list_my_resources(session: SessionDep, account: Reader) -> list[ResourcePublic]:
    """My resources, decommissioned ones included (discover others at `/v1/things`)."""
    return [services.public_view(r) for r in services.list_owned(session, account)]


@router.get("/{resource_id}", response_model=ResourcePublic, responses=raises(ResourceNotFound))
def get_resource(resource_id: uuid.UUID, session: SessionDep, account: Reader) -> ResourcePublic:
    """A resource as registered, with its latest reported state."""
    return services.public_view(services.get_resource(session, resource_id))


@router.patch(
    "/{resource_id}",
    response_model=ResourcePublic,
    responses=raises(
        ResourceNotFound,
        ResourceAccessDenied,
        ResourceDecommissioned,
        ResourceLimitsInvalid,
        MeterNotFound,
        MeterAccessDenied,
        StorageBehindCertifiedMeter,
    ),
)
def update_resource(
    resource_id: uuid.UUID,
    data: ResourceUpdate,
    session: SessionDep,
    settings: SettingsDep,
    account: MeterDataAccount,
) -> ResourcePublic:
    """Change a resource you own (not its kind); the limits must still fit together."""
    resource = services.update_resource(session, settings, account, resource_id, data)
    session.commit()
    session.refresh(resource)
    return services.public_view(resource)


@router.post(
    "/{resource_id}/decommission",
    response_model=ResourcePublic,
    responses=raises(ResourceNotFound, ResourceAccessDenied, ResourceDecommissioned),
)
def decommission_resource(
    resource_id: uuid.UUID, session: SessionDep, settings: SettingsDep, account: MeterDataAccount
) -> ResourcePublic:
    """Retire a resource you own: it leaves the directory and any VPP, and stays read-only."""
    resource = services.decommission_resource(session, settings, account, resource_id)
    session.commit()
    session.refresh(resource)
    return services.public_view(resource)


@router.get(
    "/{resource_id}/state", response_model=ResourceState, responses=raises(ResourceNotFound)
)
def read_state(resource_id: uuid.UUID, session: SessionDep, account: Reader) -> ResourceState:
    """All properties of the resource's Thing (WoT `readallproperties`): output, SoC, status."""
    return services.state_of(services.get_resource(session, resource_id))


@router.get(
    "/{resource_id}/properties/{name}",
    response_model=int | str | None,
    responses=raises(ResourceNotFound),
)
def read_property(
    resource_id: uuid.UUID, name: PropertyName, session: SessionDep, account: Reader
) -> int | str | None:
    """One property of the resource's Thing (WoT `readproperty`): its bare value."""
    state = services.state_of(services.get_resource(session, resource_id))
    return state.status.value if name == "status" else getattr(state, name)

"""API shapes of VPPs, after WIA-ENE-014's VPP data model (`vppId`, `capacity`, `resources`
with `type`, `capacity`, `current`, `efficiency`, `soc`, `location`; `aggregatedOutput`,
`status`, `lastUpdate`), in our units: power in integer W (`unit: "W"`), energy in Wh."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from backend.resources.models import ResourceKind
from backend.resources.schemas import GridArea, Location, Name


class VppStatus(StrEnum):
    EMPTY = "empty"  # no member resources
    OPERATIONAL = "operational"  # every member is available
    DEGRADED = "degraded"  # some members are unavailable to dispatch


class VppCreate(BaseModel):
    name: Name
    gridArea: GridArea | None = Field(
        default=None, description="members must be in this grid area (none: any area)"
    )
    description: str = Field(default="", max_length=500)


class VppUpdate(BaseModel):
    """Fields left out keep their value."""

    name: Name | None = None
    description: str | None = Field(default=None, max_length=500)


class VppResource(BaseModel):
    """A member resource, in the seed's shape."""

    id: uuid.UUID
    name: str
    type: ResourceKind
    capacity: int = Field(description="rated power, W")
    current: int | None = Field(description="latest output, W (+ feeds the grid); null: none yet")
    efficiency: float = Field(description="charge × discharge efficiency (round trip)")
    soc: float | None = Field(description="state of charge as a fraction (storage only)")
    socWh: int | None
    energyCapacityWh: int | None
    available: bool
    location: Location | None
    ownerId: uuid.UUID
    joinedAt: datetime


class VppPublic(BaseModel):
    vppId: uuid.UUID
    name: str
    description: str
    aggregatorId: uuid.UUID
    gridArea: str | None
    capacity: int = Field(description="sum of the members' rated power")
    energyCapacityWh: int = Field(description="sum of the members' storage")
    unit: Literal["W"] = "W"
    resources: list[VppResource]
    aggregatedOutput: int = Field(description="sum of the members' latest output, W")
    status: VppStatus
    lastUpdate: datetime


class MembershipCreate(BaseModel):
    resourceId: uuid.UUID = Field(description="a resource you own: joining is your consent")


class MembershipPublic(BaseModel):
    vppId: uuid.UUID
    resourceId: uuid.UUID
    consentedBy: uuid.UUID
    joinedAt: datetime
    leftAt: datetime | None
    endedBy: str | None

"""API shapes of VPPs, after WIA-ENE-014's VPP data model (`vppId`, `capacity`, `resources`
with `type`, `capacity`, `current`, `efficiency`, `soc`, `location`; `aggregatedOutput`,
`status`, `lastUpdate`), in our units: power in integer W (`unit: "W"`), energy in Wh."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from backend.core.text import FreeText
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
    description: FreeText = Field(default="", max_length=500)


class VppUpdate(BaseModel):
    """Fields left out keep their value."""

    name: Name | None = None
    description: FreeText | None = Field(default=None, max_length=500)


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


Slots = Annotated[list[int], Field(min_length=96, max_length=96)]
SlotFlags = Annotated[list[bool], Field(min_length=96, max_length=96)]


class OptimizeConstraints(BaseModel):
    minRenewable: float = Field(
        default=0.0, ge=0, le=1, description="least share of consumption not bought from the grid"
    )
    maxImportW: int | None = Field(default=None, ge=0, le=10**12)
    maxExportW: int | None = Field(default=None, ge=0, le=10**12)


class ResourcePlan(BaseModel):
    """What the aggregator knows about one member for this day (all optional)."""

    initialSocWh: int | None = Field(default=None, ge=0, description="default: last reported")
    plugged: SlotFlags | None = Field(default=None, description="EV: plugged in, per slot")
    targetSlot: int | None = Field(default=None, ge=0, lt=96)
    targetSocWh: int = Field(default=0, ge=0, description="EV: SoC wanted by `targetSlot`")
    energyWh: int = Field(
        default=0, ge=0, description="flexible load, heat pump: energy to draw over the day"
    )
    window: SlotFlags | None = Field(default=None, description="slots the load may run in")


class OptimizeRequest(BaseModel):
    """A day of 96 quarter hours from `start`: prices per kWh in token units, forecasts in Wh
    per slot (inflexible demand, PV generation of the VPP's members)."""

    start: datetime | None = Field(
        default=None, description="start of slot 0, on a 15-minute boundary (default: the next)"
    )
    buyPrice: Slots
    sellPrice: Slots | None = Field(default=None, description="default: nothing paid for export")
    demandWh: Slots | None = None
    pvWh: Slots | None = None
    constraints: OptimizeConstraints = OptimizeConstraints()
    resources: dict[uuid.UUID, ResourcePlan] = Field(default_factory=dict)


class ResourceAllocation(BaseModel):
    resourceId: uuid.UUID
    type: ResourceKind
    setpointsW: list[int] = Field(description="power per slot, W; positive feeds the grid")
    socWh: list[int] | None = Field(description="state of charge at the end of each slot")
    shortfallWh: int = Field(default=0, description="energy a flexible load could not draw")


class GridSchedule(BaseModel):
    importWh: list[int]
    exportWh: list[int]
    unmetWh: list[int]
    curtailWh: list[int]


class OptimizeResult(BaseModel):
    scheduleId: uuid.UUID
    vppId: uuid.UUID
    status: Literal["completed", "infeasible"]
    start: datetime
    slotSeconds: int = 900
    cost: int = Field(description="energy cost minus export revenue plus penalties, token units")
    renewableShare: float | None = Field(description="share of consumption not imported")
    grid: GridSchedule
    allocation: list[ResourceAllocation]
    solveSeconds: float


class SlotAdherence(BaseModel):
    slot: int
    start: datetime
    plannedWh: int = Field(description="setpoint × slot length (+ feeds the grid)")
    actualWh: int | None = Field(description="mean reported output × slot length; null: none")
    deviationWh: int | None = Field(description="actual − planned")
    followed: bool | None = Field(description="|deviation| within the tolerance; null: no data")


class ResourceAdherence(BaseModel):
    resourceId: uuid.UUID
    type: ResourceKind
    toleranceWh: int = Field(description="tolerance share × rated power × slot length")
    measuredSlots: int
    followedSlots: int
    absDeviationWh: int = Field(description="sum of |deviation| over the measured slots")
    slots: list[SlotAdherence]


class Adherence(BaseModel):
    """Planned vs actual per resource and ended slot (backend/vpp/adherence.py)."""

    scheduleId: uuid.UUID
    vppId: uuid.UUID
    start: datetime
    slotSeconds: int
    endedSlots: int
    tolerance: float = Field(description="share of rated power a slot may deviate by")
    resources: list[ResourceAdherence]


class CommandPublic(BaseModel):
    """One command to a device and where it stands (backend/vpp/downlink.py)."""

    commandId: uuid.UUID
    resourceId: uuid.UUID
    scheduleId: uuid.UUID | None
    type: Literal["schedule", "setpoint", "config"]
    topic: str
    state: Literal["pending", "sent", "acked", "late", "failed"]
    attempts: int
    createdAt: datetime
    sentAt: datetime | None
    ackBy: datetime | None = Field(description="acknowledgement deadline")
    ackedAt: datetime | None = Field(description="set on a late acknowledgement too")
    ackResult: Literal["accepted", "rejected"] | None
    detail: str | None
    payload: dict[str, object]


class DispatchStatusPublic(BaseModel):
    vppId: uuid.UUID
    counts: dict[str, int] = Field(description="commands of this VPP by state")
    commands: list[CommandPublic] = Field(description="newest first")


class SetpointRequest(BaseModel):
    powerW: int = Field(ge=-(10**12), le=10**12, description="+ feeds the grid")
    until: datetime


class DispatchQueued(BaseModel):
    vppId: uuid.UUID
    commands: list[CommandPublic]

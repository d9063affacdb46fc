"""API shapes of the DER registry. Power in W, energy in Wh (integers); efficiencies are
fractions in (0, 1]; a location is WGS 84 `{lat, lng}` as in WIA-ENE-014."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from backend.resources.models import Capability, ResourceKind, ResourceStatus

Watts = Annotated[int, Field(ge=0, le=10**10)]
WattHours = Annotated[int, Field(ge=0, le=10**12)]
Efficiency = Annotated[float, Field(gt=0, le=1)]
GridArea = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=120, pattern=r"^[^\x00-\x1f\x7f]+$")]


class Location(BaseModel):
    lat: float = Field(ge=-90, le=90)
    lng: float = Field(ge=-180, le=180)


class ResourceCreate(BaseModel):
    """A new resource. Limits left out default from the kind: PV only generates, flexible
    loads, heat pumps and EV chargers only consume, batteries do both, at `capacity_w`;
    storage (battery, EV charger) needs `energy_capacity_wh` and may use all of it."""

    name: Name
    kind: ResourceKind
    meter: str = Field(
        min_length=1,
        max_length=120,
        description="the meter it sits behind (bytes32 id or registered name); must be yours",
    )
    grid_area: GridArea
    location: Location | None = None
    capacity_w: Annotated[int, Field(gt=0, le=10**10)] = Field(description="rated power, W")
    energy_capacity_wh: WattHours | None = Field(
        default=None, description="usable storage, Wh (battery, EV charger)"
    )
    max_charge_w: Watts | None = Field(default=None, description="limit on import, W")
    max_discharge_w: Watts | None = Field(default=None, description="limit on export, W")
    min_soc_wh: WattHours | None = None
    max_soc_wh: WattHours | None = None
    charge_efficiency: Efficiency = 1.0
    discharge_efficiency: Efficiency = 1.0
    available: bool = True
    mqtt_password: str | None = Field(
        default=None,
        min_length=12,
        max_length=200,
        description="the device's MQTT broker password (its username is the resource id); "
        "it may read its own command and config topics and write its own telemetry",
    )


class ResourceUpdate(BaseModel):
    """Changes to a resource; fields left out keep their value. The kind and owner are fixed."""

    name: Name | None = None
    meter: str | None = Field(default=None, min_length=1, max_length=120)
    grid_area: GridArea | None = None
    location: Location | None = None
    capacity_w: Annotated[int, Field(gt=0, le=10**10)] | None = None
    energy_capacity_wh: WattHours | None = None
    max_charge_w: Watts | None = None
    max_discharge_w: Watts | None = None
    min_soc_wh: WattHours | None = None
    max_soc_wh: WattHours | None = None
    charge_efficiency: Efficiency | None = None
    discharge_efficiency: Efficiency | None = None
    available: bool | None = None


class ResourceState(BaseModel):
    """The latest reported state (the Thing Description's properties)."""

    output: int | None = Field(
        description="W; positive feeds the grid, negative takes from it (null: never reported)"
    )
    soc: int | None = Field(description="state of charge, Wh (storage only)")
    status: ResourceStatus
    available: bool
    timestamp: datetime | None = Field(description="when the device last reported")


class ResourcePublic(BaseModel):
    id: uuid.UUID
    name: str
    kind: ResourceKind
    owner_id: uuid.UUID
    meter_id: str
    grid_area: str
    location: Location | None
    capacity_w: int
    energy_capacity_wh: int | None
    max_charge_w: int
    max_discharge_w: int
    min_soc_wh: int | None
    max_soc_wh: int | None
    charge_efficiency: float
    discharge_efficiency: float
    available: bool
    status: ResourceStatus
    capabilities: list[Capability]
    state: ResourceState
    created_at: datetime
    updated_at: datetime
    decommissioned_at: datetime | None

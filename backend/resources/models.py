"""The DER registry: PV systems, batteries, EV chargers, flexible loads and heat pumps.

Power is integer W, energy integer Wh. Sign convention of `output_w`: positive feeds the grid
(generation, discharge), negative takes from it (consumption, charging). Efficiencies are
dimensionless fractions in (0, 1]. A resource sits behind one meter its owner owns: metered
truth stays with the meter; the resource row says what the device can do.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, Index, Integer
from sqlmodel import Field, SQLModel

from backend.core.utc import utc_now

ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")


class ResourceKind(StrEnum):
    PV = "pv"
    BATTERY = "battery"
    EV_CHARGER = "ev_charger"
    FLEXIBLE_LOAD = "flexible_load"
    HEAT_PUMP = "heat_pump"


STORAGE_KINDS = frozenset({ResourceKind.BATTERY, ResourceKind.EV_CHARGER})


class ResourceStatus(StrEnum):
    """Lifecycle: registered resources are active until their owner decommissions them."""

    ACTIVE = "active"
    DECOMMISSIONED = "decommissioned"  # kept for history; no longer discoverable or writable


class Capability(StrEnum):
    """What a resource can be asked to do (the directory's `capability` filter)."""

    GENERATION = "generation"  # can feed the grid (max_discharge_w > 0)
    CONSUMPTION = "consumption"  # takes from the grid (max_charge_w > 0)
    STORAGE = "storage"  # holds energy (battery, EV): has a state of charge
    DISPATCHABLE = "dispatchable"  # follows setpoints (everything but PV)


class DerResource(SQLModel, table=True):
    """One registered DER. `capacity_w` is the rated power; `max_charge_w`/`max_discharge_w`
    the limits a schedule must respect; `energy_capacity_wh` and `min_soc_wh`..`max_soc_wh`
    (storage only) bound the state of charge. `output_w`, `soc_wh` and `state_at` are the
    latest reported state (telemetry), empty until the device reports."""

    __tablename__ = "der_resources"
    __table_args__ = (Index("ix_der_resources_kind_area", "kind", "grid_area"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=120)
    kind: str = Field(max_length=16)  # ResourceKind
    owner_id: uuid.UUID = Field(foreign_key="accounts.id", index=True)
    meter_id: str = Field(max_length=66, foreign_key="meters.meter_id", index=True)
    grid_area: str = Field(max_length=32)
    latitude: float | None = None
    longitude: float | None = None
    capacity_w: int = Field(sa_column=Column(BigInteger, nullable=False))
    energy_capacity_wh: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True)
    )
    max_charge_w: int = Field(sa_column=Column(BigInteger, nullable=False))
    max_discharge_w: int = Field(sa_column=Column(BigInteger, nullable=False))
    min_soc_wh: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    max_soc_wh: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    charge_efficiency: float = 1.0
    discharge_efficiency: float = 1.0
    available: bool = True  # the owner lets it be dispatched
    # the device's broker login (username: the resource id), Mosquitto's hash format
    mqtt_password_hash: str | None = Field(default=None, max_length=255)
    status: str = Field(default=ResourceStatus.ACTIVE.value, max_length=16)  # ResourceStatus
    output_w: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    soc_wh: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    state_at: datetime | None = None
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
    decommissioned_at: datetime | None = None

    @property
    def is_storage(self) -> bool:
        return self.kind in STORAGE_KINDS

    def capabilities(self) -> list[Capability]:
        found = []
        if self.max_discharge_w > 0:
            found.append(Capability.GENERATION)
        if self.max_charge_w > 0:
            found.append(Capability.CONSUMPTION)
        if self.is_storage:
            found.append(Capability.STORAGE)
        if self.kind != ResourceKind.PV:
            found.append(Capability.DISPATCHABLE)
        return found


class ResourceMove(SQLModel, table=True):
    """The owner moved a resource from one meter to another (also in the audit log as
    `resources.moved`). With the resource's current meter these rows say behind which meter it
    sat at any moment (`certified_meters.storage_spans`); a resource never moved has none.
    Written once, never changed."""

    __tablename__ = "der_resource_moves"
    __table_args__ = (Index("ix_der_resource_moves_resource_at", "resource_id", "moved_at"),)

    id: int | None = Field(
        default=None, sa_column=Column(ID_TYPE, primary_key=True, autoincrement=True)
    )
    resource_id: uuid.UUID = Field(foreign_key="der_resources.id")
    from_meter_id: str = Field(max_length=66, foreign_key="meters.meter_id", index=True)
    to_meter_id: str = Field(max_length=66, foreign_key="meters.meter_id", index=True)
    moved_at: datetime = Field(default_factory=utc_now)
    moved_by: uuid.UUID = Field(foreign_key="accounts.id")


class TelemetryMetric(StrEnum):
    """What a device reports on `{root}/{gridArea}/{deviceType}/{resourceId}/{metric}`."""

    OUTPUT = "output"  # W (+ feeds the grid)
    SOC = "soc"  # Wh
    STATUS = "status"  # free text (e.g. "online", a command acknowledgement)


class TelemetrySample(SQLModel, table=True):
    """One reported value of a resource: the telemetry store, separate from the 15-minute
    settlement readings (it settles nothing). `at` is the device's timestamp (unix s)."""

    __tablename__ = "der_telemetry"

    # keyed by the sample, no surrogate id and no foreign key (migration i17_telemetry_key): a
    # redelivered message stores nothing twice, the key serves the reads (which all name the
    # metric), and the subscriber resolves every sample's resource from its topic first
    resource_id: uuid.UUID = Field(primary_key=True)
    metric: str = Field(primary_key=True, max_length=8)  # TelemetryMetric
    at: int = Field(sa_column=Column(BigInteger, primary_key=True))
    value: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    status: str | None = Field(default=None, max_length=64)
    received_at: datetime = Field(default_factory=utc_now)

"""API shapes of meters and readings. `ReadingIn` is the WIA-ENE-014 style reading; its JSON
Schema is published in the OpenAPI and as `backend/meters/reading.schema.json`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.core.json_ints import MAX_SAFE_INTEGER, SafeInt
from backend.meters.models import MeterKind, MeterStatus

Direction = Literal["consumption", "generation"]  # import or export energy of a meter
Aggregation = Literal["15min", "hourly"]


class ReadingIn(BaseModel):
    """One interval reading of a smart meter (WIA-ENE-014 fields, interval energy in Wh)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "meterId": "0x5b1c...",
                    "timestamp": "2025-12-25T10:30:00Z",
                    "intervalSeconds": 900,
                    "importWh": 120,
                    "exportWh": 850,
                    "unit": "Wh",
                    "voltage": 230.1,
                    "current": 3.2,
                    "powerFactor": 0.98,
                    "quality": "high",
                }
            ]
        },
    )

    meterId: str = Field(
        description="bytes32 hex meter id (0x + 64 hex) or the meter's registered name"
    )
    timestamp: str = Field(description="start of the interval, ISO 8601 UTC, aligned to 15 minutes")
    intervalSeconds: Literal[900] = 900
    importWh: float | None = Field(
        default=None, ge=0, description="energy taken from the grid (consumption)"
    )
    exportWh: float | None = Field(
        default=None, ge=0, description="energy fed into the grid (generation)"
    )
    unit: Literal["Wh", "kWh"] = "Wh"
    voltage: float | None = None
    current: float | None = None
    powerFactor: float | None = Field(default=None, ge=-1, le=1)
    quality: Literal["high", "medium", "low", "estimated"] | None = None
    signature: str | None = Field(
        default=None,
        pattern=r"^0x[0-9a-fA-F]{130}$",
        description="the meter's EIP-712 signature of MeterReading{meterId, intervalStart, "
        "intervalSeconds, importWh, exportWh} (absent values as 0), domain GridLedger Meters / "
        "RECRegistry; without it the reading is stored unverified",
    )


class Rejection(BaseModel):
    index: int = Field(
        description="position of the reading in the request (0 for a single reading)"
    )
    meterId: str | None = None
    timestamp: str | None = None
    reason: str


class Superseded(BaseModel):
    index: int = Field(description="position of the earlier reading in the request")
    by: int = Field(description="position of the reading of the same interval that won")
    meterId: str | None = None
    timestamp: str | None = None


class IngestResult(BaseModel):
    received: int
    accepted: int
    duplicate: int
    corrected: int
    verified: int = Field(
        default=0,
        description="readings of the request stored as verified: signed by the meter's approved "
        "key, or posted by a metering data provider (only these settle trades and issue RECs)",
    )
    rejected: int
    rejections: list[Rejection] = []
    superseded: int = Field(
        default=0,
        description="readings followed in the request by a later reading of the same meter and "
        "interval: the last one in message order wins. Each was stored and then corrected by "
        "the later one (so it is also counted above, and its values are in the corrections "
        "audit trail), as if the readings had been sent one after another",
    )
    supersededReadings: list[Superseded] = []


ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"
Capacity = Annotated[int, Field(gt=0, le=10**10)]


class MeterCreate(BaseModel):
    name: str = Field(min_length=1, max_length=120, pattern=r"^[^\x00-\x1f\x7f]+$")
    kind: MeterKind = MeterKind.BOTH
    capacity_w: Capacity
    device_id: SafeInt | None = Field(default=None, ge=1, le=MAX_SAFE_INTEGER)
    mqtt_password: str | None = Field(default=None, min_length=12, max_length=200)
    signing_key: str | None = Field(
        default=None,
        pattern=ADDRESS_PATTERN,
        description="address of the key the meter signs its readings with (registrar approves)",
    )


class MeterApproval(BaseModel):
    """A registrar's approval (or re-approval: new capacity, key rotation) of a meter."""

    capacity_w: Capacity = Field(description="approved capacity: caps export per interval")
    signing_key: str | None = Field(
        default=None,
        pattern=ADDRESS_PATTERN,
        description="overrides the key the owner gave at registration",
    )


class MeterPublic(BaseModel):
    meter_id: str
    name: str
    owner_id: uuid.UUID
    kind: str
    capacity_w: int
    device_id: int | None
    status: MeterStatus
    signing_key: str | None
    approved_capacity_w: int | None
    approved_by: uuid.UUID | None
    approved_at: datetime | None
    created_at: datetime


class EnergyPoint(BaseModel):
    start: datetime
    end: datetime
    wh: int
    intervals: int = Field(description="15-minute readings present in the bucket")
    verified_wh: int = Field(
        default=0, description="the part of `wh` from verified readings (what settles)"
    )
    verified_intervals: int = Field(
        default=0, description="readings of the bucket that are verified; the rest are not paid"
    )


class EnergySeries(BaseModel):
    meterId: str
    direction: Direction
    aggregation: Aggregation
    unit: Literal["Wh"] = "Wh"
    points: list[EnergyPoint]

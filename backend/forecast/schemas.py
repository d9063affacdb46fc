"""API shapes of `POST /v1/energy/forecast`, after WIA-ENE-014's request (`horizon` in hours,
`location`), adapted: the target is named by kind and id (its location comes from its
resources), the resolution is 15 minutes, and the answer carries timestamps (UTC), integer Wh,
the model that won the backtest and the backtest's accuracy against seasonal-naive."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from backend.forecast.models import Quantity, TargetKind

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # a forecast's start outside these is a mistake
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


class ForecastRequest(BaseModel):
    target: TargetKind = Field(description="meter, resource, vpp, vppGeneration, area or vppDemand")
    targetId: str = Field(
        min_length=1, max_length=66, description="meter id, resource or VPP id, grid area"
    )
    horizon: int = Field(default=24, ge=1, le=24, description="hours ahead")
    resolution: Literal[15] = Field(default=15, description="minutes per value")
    start: datetime | None = Field(
        default=None, description="start of the first slot, on a 15-minute boundary (default: next)"
    )
    verifiedOnly: bool = Field(
        default=False, description="meters and areas: read verified readings only"
    )

    @field_validator("start")
    @classmethod
    def _plausible(cls, start: datetime | None) -> datetime | None:
        if start is not None and start.tzinfo is not None and not EARLIEST <= start < LATEST:
            raise ValueError("start must be in 2000..2099 (UTC)")
        return start


class ForecastPoint(BaseModel):
    timestamp: datetime = Field(description="start of the slot (UTC)")
    value: int = Field(description="energy in the slot, Wh")


class Accuracy(BaseModel):
    maeWh: float = Field(description="mean absolute error per slot, Wh")
    mape: float | None = Field(description="mean absolute percentage error (fraction)")


class Backtest(BaseModel):
    """Both forecasters fitted on the history but its last 24 h, scored on those 24 h."""

    heldOutFrom: datetime
    model: Accuracy
    naive: Accuracy = Field(description="seasonal-naive: the same slot the day before")


class WeatherUsed(BaseModel):
    provider: str
    latitude: float
    longitude: float


class ForecastResult(BaseModel):
    forecastId: uuid.UUID
    target: TargetKind
    targetId: str
    quantity: Quantity = Field(description="netImportWh (meter, area) or outputWh")
    unit: Literal["Wh"] = "Wh"
    horizon: int
    resolution: int
    model: str
    values: list[ForecastPoint]
    backtest: Backtest
    weather: WeatherUsed
    historyFrom: datetime
    historySlots: int
    createdAt: datetime

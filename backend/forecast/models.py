"""Stored forecasts: each run with its inputs (the history window read, the weather used, the
model's settings) and its result, so a forecast and any schedule built on it can be explained
after the fact."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index
from sqlmodel import Field, SQLModel

from backend.core.utc import utc_now


class TargetKind(StrEnum):
    """What is forecast, and from which history:

    - `meter`: the meter's net import (import − export, Wh) from its settlement readings, the
      latest revision of each interval, verified or not (`verifiedOnly` narrows to verified);
    - `resource`: the DER's output (Wh, positive feeds the grid) from its `output` telemetry,
      averaged per 15 minutes;
    - `vpp`: the sum of its current members' outputs (as `resource`);
    - `vppGeneration`: the same over its PV members only (what its dispatch takes as generation;
      storage and loads are what the dispatch plans, their history must not feed it);
    - `area`: the summed net import of the meters behind the area's active resources;
    - `vppDemand`: the consumption behind the VPP members' meters that the members themselves do
      not make: per slot, the meters' summed net import plus the members' output (their
      telemetry, 0 where none), at least 0. What the VPP's dispatch must serve (its `demandWh`).
    """

    METER = "meter"
    RESOURCE = "resource"
    VPP = "vpp"
    AREA = "area"
    VPP_GENERATION = "vppGeneration"
    VPP_DEMAND = "vppDemand"


class Quantity(StrEnum):
    NET_IMPORT_WH = "netImportWh"
    OUTPUT_WH = "outputWh"
    CONSUMPTION_WH = "consumptionWh"


class StoredForecast(SQLModel, table=True):
    __tablename__ = "forecasts"
    __table_args__ = (Index("ix_forecasts_target", "target_kind", "target_id", "start"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    target_kind: str = Field(max_length=16)  # TargetKind
    target_id: str = Field(max_length=66)  # meter id, resource/VPP uuid or grid area
    requested_by: uuid.UUID | None = Field(default=None, foreign_key="accounts.id")
    start: int = Field(sa_column=Column(BigInteger, nullable=False))  # unix s of slot 0
    slot_seconds: int = 900
    horizon: int  # slots
    model: str = Field(max_length=32)
    mae_wh: float
    mape: float | None = None
    naive_mae_wh: float
    naive_mape: float | None = None
    inputs: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    values: list[int] = Field(sa_column=Column(JSON, nullable=False))  # Wh per slot
    created_at: datetime = Field(default_factory=utc_now)

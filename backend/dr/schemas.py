"""API shapes of demand response. Money in token units per kWh, power in W (integers); event
times are unix seconds on 15-minute boundaries (start inclusive, end exclusive)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from backend.core.json_ints import U63, AmountStr, SafeInt
from backend.core.text import FreeText
from backend.dr.models import BaselineMethod, ProgramType, SignalType

Watts = Annotated[SafeInt, Field(ge=0, le=10**10)]
TokenPerKwh = Annotated[AmountStr, Field(ge=0, le=U63)]
UnixSeconds = Annotated[SafeInt, Field(ge=0, le=2**40)]
Name = Annotated[str, Field(min_length=1, max_length=120, pattern=r"^[^\x00-\x1f\x7f]+$")]


class ProgramCreate(BaseModel):
    name: Name
    program_type: ProgramType
    incentive_per_kwh: TokenPerKwh = Field(description="token units paid per kWh reduced")
    penalty_per_kwh: TokenPerKwh = Field(description="token units charged per kWh of shortfall")
    notification_lead_s: Annotated[int, Field(ge=0, le=7 * 86_400)] = Field(
        description="an event must be called at least this long before it starts"
    )
    max_events: Annotated[int, Field(ge=1, le=10_000)]
    baseline_method: BaselineMethod = BaselineMethod.HIGH_4_OF_5
    description: FreeText = Field(default="", max_length=500)


class ProgramPublic(BaseModel):
    id: uuid.UUID
    name: str
    program_type: ProgramType
    operator_id: uuid.UUID
    incentive_per_kwh: AmountStr
    penalty_per_kwh: AmountStr
    notification_lead_s: int
    max_events: int
    events_called: int
    baseline_method: BaselineMethod
    description: str
    created_at: datetime


class EnrolmentCreate(BaseModel):
    """Enrol a meter you own, or a resource you own (through its meter); exactly one."""

    meter: str | None = Field(
        default=None, min_length=1, max_length=120, description="bytes32 id or registered name"
    )
    resource_id: uuid.UUID | None = None
    committed_w: Watts = Field(description="the reduction offered by default, W")

    @model_validator(mode="after")
    def one_target(self) -> EnrolmentCreate:
        if (self.meter is None) == (self.resource_id is None):
            raise ValueError("give exactly one of meter and resource_id")
        return self


class EnrolmentPublic(BaseModel):
    id: uuid.UUID
    program_id: uuid.UUID
    account_id: uuid.UUID
    meter_id: str
    resource_id: uuid.UUID | None
    committed_w: int
    enrolled_at: datetime
    withdrawn_at: datetime | None


class Commitment(BaseModel):
    enrolment_id: uuid.UUID
    committed_w: Watts


class EventCreate(BaseModel):
    """Call an event. Every open enrolment of the program takes part, asked for its default
    reduction unless `commitments` names another figure for it."""

    program_id: uuid.UUID
    start: UnixSeconds
    end: UnixSeconds
    signal_type: SignalType = SignalType.SIMPLE
    signal_value: Annotated[AmountStr, Field(ge=0, le=U63)] = Field(
        default=1, description="SIMPLE level 0-3, LOAD_DISPATCH W, ELECTRICITY_PRICE per kWh"
    )
    commitments: list[Commitment] = Field(default_factory=list, max_length=10_000)


class ParticipationPublic(BaseModel):
    enrolment_id: uuid.UUID
    meter_id: str
    resource_id: uuid.UUID | None
    account_id: uuid.UUID
    committed_w: int
    opted_out_at: datetime | None
    opt_out_reason: str | None


class EventPublic(BaseModel):
    id: uuid.UUID
    program_id: uuid.UUID
    created_by: uuid.UUID
    start: int
    end: int
    signal_type: SignalType
    signal_value: AmountStr
    created_at: datetime
    cancelled_at: datetime | None
    participants: list[ParticipationPublic]


class OptOut(BaseModel):
    enrolment_id: uuid.UUID
    reason: FreeText | None = Field(default=None, max_length=200)


class IntervalPerformancePublic(BaseModel):
    interval_start: int
    baseline_wh: int
    metered_wh: int | None = Field(description="verified net load; null: no verified reading")
    committed_wh: int
    delivered_wh: int
    credited_wh: int
    shortfall_wh: int


class ParticipantPerformance(BaseModel):
    """One participant's result. `status`: `evaluated`, `opted_out` (no incentive, no penalty),
    or `no_baseline` (too few eligible days of verified readings; `detail` says why)."""

    enrolment_id: uuid.UUID
    account_id: uuid.UUID
    meter_id: str
    status: str
    detail: str | None = None
    baseline_days: list[str] = Field(default_factory=list)
    committed_w: int
    credited_wh: int = 0
    shortfall_wh: int = 0
    incentive: AmountStr = 0
    penalty: AmountStr = 0
    intervals: list[IntervalPerformancePublic] = Field(default_factory=list)


class EventPerformance(BaseModel):
    event_id: uuid.UUID
    baseline_method: BaselineMethod
    participants: list[ParticipantPerformance]


class OfferCreate(BaseModel):
    """DR capacity an aggregator offers (ITU-T Y.2072 DR trading): `capacity_w` of reduction
    over [start, end) on a meter or resource it owns (exactly one), at `price_per_kwh` per kWh
    reduced against the baseline, `penalty_per_kwh` per kWh of shortfall."""

    meter: str | None = Field(
        default=None, min_length=1, max_length=120, description="bytes32 id or registered name"
    )
    resource_id: uuid.UUID | None = None
    start: UnixSeconds
    end: UnixSeconds
    capacity_w: Watts
    price_per_kwh: TokenPerKwh
    penalty_per_kwh: TokenPerKwh = 0
    baseline_method: BaselineMethod = BaselineMethod.HIGH_4_OF_5

    @model_validator(mode="after")
    def one_target(self) -> OfferCreate:
        if (self.meter is None) == (self.resource_id is None):
            raise ValueError("give exactly one of meter and resource_id")
        return self


class OfferPublic(BaseModel):
    id: uuid.UUID
    aggregator_id: uuid.UUID
    meter_id: str
    resource_id: uuid.UUID | None
    start: int
    end: int
    capacity_w: int
    price_per_kwh: AmountStr
    penalty_per_kwh: AmountStr
    baseline_method: BaselineMethod
    status: str
    accepted_by: uuid.UUID | None
    program_id: uuid.UUID | None
    event_id: uuid.UUID | None
    created_at: datetime
    accepted_at: datetime | None


class ParticipantSettlement(BaseModel):
    """One account's result in an event as posted on chain. `status`: pending, submitted,
    settled, nothing_due (no incentive and no penalty), closed (settled on chain before we sent
    it), failed. `penalty` is what is owed; the contract takes at most the collateral posted."""

    account_id: uuid.UUID
    address: str
    credited_wh: int
    shortfall_wh: int
    incentive: AmountStr
    penalty: AmountStr
    data_missing: bool
    status: str
    tx_hash: str | None
    failure: str | None
    settled_at: datetime | None


class EventSettlement(BaseModel):
    """`state`: `waiting` (the event has not ended or its data is incomplete: nothing written
    yet), `in_progress` (some results not on chain yet) or `settled`."""

    event_id: uuid.UUID
    state: str
    participants: list[ParticipantSettlement]


class VppNotificationPublic(BaseModel):
    event_id: uuid.UUID
    vpp_id: uuid.UUID
    start: int
    end: int
    committed_w: int
    resources: int
    created_at: datetime


class EscrowCreate(BaseModel):
    """Token base units to escrow in DemandResponse (a program's budget, or collateral)."""

    amount: Annotated[AmountStr, Field(gt=0, le=U63)]


class EscrowPosted(BaseModel):
    program_id: uuid.UUID
    amount: AmountStr
    tx_hash: str

"""DR programs, enrolments, events and each enrolment's part in an event.

An operator (`Role.OPERATOR`, the utility/DSO side of the market) defines programs and calls
events. Customers and aggregators enrol meters they own, or resources they own (enrolled through
the resource's meter, whose verified readings measure performance). Money is integer token units
per kWh; power in W; times are unix seconds aligned to 15-minute periods. Nothing is deleted:
withdrawing stamps `withdrawn_at`, cancelling an event stamps `cancelled_at`, opting out stamps
`opted_out_at` on the participation, so a past settlement can always be explained.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, Index, Integer, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from backend.core.utc import utc_now

ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")


class ProgramType(StrEnum):
    """ITU-T Y.2072 / OpenADR program families."""

    CAPACITY = "capacity"  # committed reduction on call, penalised on shortfall
    ECONOMIC = "economic"  # paid per kWh reduced against the baseline
    EMERGENCY = "emergency"  # reliability events at short notice
    PEAK_PRICING = "peak_pricing"  # critical peak price signals


class SignalType(StrEnum):
    """The OpenADR 2.0b signals an event carries (signalName)."""

    SIMPLE = "SIMPLE"  # level 0..3 (normal, moderate, high, special)
    LOAD_DISPATCH = "LOAD_DISPATCH"  # a power setpoint or reduction, W
    ELECTRICITY_PRICE = "ELECTRICITY_PRICE"  # a price, token units per kWh


class BaselineMethod(StrEnum):
    """How the event's customer baseline load is computed (backend/dr/baselines.py)."""

    HIGH_4_OF_5 = "high_4_of_5"  # PJM economic CBL, additive same-day adjustment
    HIGH_5_OF_10 = "high_5_of_10"  # NYISO CBL
    TEN_OF_TEN = "10_of_10"  # CAISO, multiplicative same-day adjustment
    WEATHER_REGRESSION = "weather_regression"


class DrProgram(SQLModel, table=True):
    __tablename__ = "dr_programs"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=120)
    program_type: str = Field(max_length=16)  # ProgramType
    operator_id: uuid.UUID = Field(foreign_key="accounts.id", index=True)
    incentive_per_kwh: int = Field(sa_column=Column(BigInteger, nullable=False))  # token units
    penalty_per_kwh: int = Field(sa_column=Column(BigInteger, nullable=False))  # token units
    notification_lead_s: int = Field(sa_column=Column(BigInteger, nullable=False))
    max_events: int
    baseline_method: str = Field(max_length=24)  # BaselineMethod
    description: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utc_now)


class DrEnrolment(SQLModel, table=True):
    """A meter (directly, or behind an enrolled resource) in a program, with the reduction its
    owner offers by default (`committed_w`; an event may ask for another figure)."""

    __tablename__ = "dr_enrolments"
    __table_args__ = (
        Index(
            "uq_dr_enrolments_open_meter",
            "program_id",
            "meter_id",
            unique=True,
            postgresql_where=text("withdrawn_at IS NULL"),
            sqlite_where=text("withdrawn_at IS NULL"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    program_id: uuid.UUID = Field(foreign_key="dr_programs.id", index=True)
    account_id: uuid.UUID = Field(foreign_key="accounts.id", index=True)  # the owner
    meter_id: str = Field(max_length=66, foreign_key="meters.meter_id")
    resource_id: uuid.UUID | None = Field(default=None, foreign_key="der_resources.id")
    committed_w: int = Field(sa_column=Column(BigInteger, nullable=False))
    enrolled_at: datetime = Field(default_factory=utc_now)
    withdrawn_at: datetime | None = None


class DrEvent(SQLModel, table=True):
    __tablename__ = "dr_events"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    program_id: uuid.UUID = Field(foreign_key="dr_programs.id", index=True)
    created_by: uuid.UUID = Field(foreign_key="accounts.id")
    start: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))  # unix s
    end: int = Field(sa_column=Column(BigInteger, nullable=False))  # unix s, exclusive
    signal_type: str = Field(max_length=24)  # SignalType
    signal_value: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: datetime = Field(default_factory=utc_now)
    cancelled_at: datetime | None = None


class DrParticipation(SQLModel, table=True):
    """One enrolment's part in one event: the reduction it is asked for, and its opt-out."""

    __tablename__ = "dr_participations"
    __table_args__ = (UniqueConstraint("event_id", "enrolment_id", name="uq_dr_participations"),)

    id: int | None = Field(
        default=None, sa_column=Column(ID_TYPE, primary_key=True, autoincrement=True)
    )
    event_id: uuid.UUID = Field(foreign_key="dr_events.id", index=True)
    enrolment_id: uuid.UUID = Field(foreign_key="dr_enrolments.id", index=True)
    committed_w: int = Field(sa_column=Column(BigInteger, nullable=False))
    opted_out_at: datetime | None = None
    opt_out_reason: str | None = Field(default=None, max_length=200)


class DrSettlementStatus(StrEnum):
    """One participant's result in one event, up to its posting on chain (DemandResponse)."""

    PENDING = "pending"  # computed, not sent (again: a reverted or dropped batch returns here)
    SUBMITTED = "submitted"  # in a logged `settle` transaction whose outcome is not known yet
    SETTLED = "settled"  # its transaction was mined
    NOTHING_DUE = "nothing_due"  # no incentive and no penalty: nothing is sent
    CLOSED = "closed"  # the contract had the participant settled already before we sent it
    FAILED = "failed"  # the chain refuses it even alone; `failure` says why


class DrSettlement(SQLModel, table=True):
    """What one account is paid and charged for one event: the sum over its participations
    (the contract settles each (event, participant address) once). Written once when the event's
    data is complete; only the status fields change afterwards."""

    __tablename__ = "dr_settlements"
    __table_args__ = (UniqueConstraint("event_id", "account_id", name="uq_dr_settlements"),)

    id: int | None = Field(
        default=None, sa_column=Column(ID_TYPE, primary_key=True, autoincrement=True)
    )
    event_id: uuid.UUID = Field(foreign_key="dr_events.id", index=True)
    account_id: uuid.UUID = Field(foreign_key="accounts.id", index=True)
    address: str = Field(max_length=42)  # lower-case; the participant on chain
    credited_wh: int = Field(sa_column=Column(BigInteger, nullable=False))
    shortfall_wh: int = Field(sa_column=Column(BigInteger, nullable=False))
    incentive: int = Field(sa_column=Column(BigInteger, nullable=False))  # token units
    penalty: int = Field(sa_column=Column(BigInteger, nullable=False))  # owed; capped on chain
    data_missing: bool = False  # settled after the deadline with intervals lacking readings
    status: str = Field(default=DrSettlementStatus.PENDING, max_length=16, index=True)
    batch_id: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True, index=True)
    )
    settled_tx: str | None = Field(default=None, max_length=66)
    failure: str | None = Field(default=None, max_length=500)
    computed_at: datetime = Field(default_factory=utc_now)
    settled_at: datetime | None = None


class DrVppNotification(SQLModel, table=True):
    """An event told to a VPP whose members take part in it: the VPP's next optimisation keeps
    their committed reduction over the window (`committed_w` summed over its members)."""

    __tablename__ = "dr_vpp_notifications"
    __table_args__ = (UniqueConstraint("event_id", "vpp_id", name="uq_dr_vpp_notifications"),)

    id: int | None = Field(
        default=None, sa_column=Column(ID_TYPE, primary_key=True, autoincrement=True)
    )
    event_id: uuid.UUID = Field(foreign_key="dr_events.id", index=True)
    vpp_id: uuid.UUID = Field(foreign_key="vpps.id", index=True)
    start: int = Field(sa_column=Column(BigInteger, nullable=False))
    end: int = Field(sa_column=Column(BigInteger, nullable=False))
    committed_w: int = Field(sa_column=Column(BigInteger, nullable=False))
    resources: int  # how many of the VPP's members take part
    created_at: datetime = Field(default_factory=utc_now)


class DrOfferStatus(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    WITHDRAWN = "withdrawn"


class DrOffer(SQLModel, table=True):
    """DR capacity an aggregator offers (ITU-T Y.2072 DR trading): `capacity_w` of reduction
    on `meter_id` over [start, end) at `price_per_kwh` (token units per kWh reduced, against the
    baseline). Accepting it creates a one-event program with the offer's terms."""

    __tablename__ = "dr_offers"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    aggregator_id: uuid.UUID = Field(foreign_key="accounts.id", index=True)
    meter_id: str = Field(max_length=66, foreign_key="meters.meter_id")
    resource_id: uuid.UUID | None = Field(default=None, foreign_key="der_resources.id")
    start: int = Field(sa_column=Column(BigInteger, nullable=False))
    end: int = Field(sa_column=Column(BigInteger, nullable=False))
    capacity_w: int = Field(sa_column=Column(BigInteger, nullable=False))
    price_per_kwh: int = Field(sa_column=Column(BigInteger, nullable=False))
    penalty_per_kwh: int = Field(sa_column=Column(BigInteger, nullable=False))
    baseline_method: str = Field(max_length=24)  # BaselineMethod
    status: str = Field(default=DrOfferStatus.OPEN, max_length=16, index=True)
    accepted_by: uuid.UUID | None = Field(default=None, foreign_key="accounts.id")
    program_id: uuid.UUID | None = Field(default=None, foreign_key="dr_programs.id")
    event_id: uuid.UUID | None = Field(default=None, foreign_key="dr_events.id")
    created_at: datetime = Field(default_factory=utc_now)
    accepted_at: datetime | None = None

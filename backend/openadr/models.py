"""The VTN's tables: known VENs (who they are in our registry), events published to them,
each VEN's answer to each event, and the report values they sent.

A VEN is known before it ever connects: an operator records its `ven_id`, `ven_name`, the
account it acts for, the meters it reports for and the SHA-256 fingerprint of its client
certificate (backend/core/dev_ca.py). Registration (EiRegisterParty) only hands out a
`registration_id`; an unknown name or a different certificate is refused.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.core.utc import utc_now

SOURCE = "openadr"  # provenance of everything a VEN reports


class SignalName(StrEnum):
    """The signals we publish (IEC 62746-10-1 Table 2)."""

    SIMPLE = "SIMPLE"  # levels 0..3 (normal, moderate, high, special)
    LOAD_DISPATCH = "LOAD_DISPATCH"  # a setpoint or delta in W
    ELECTRICITY_PRICE = "ELECTRICITY_PRICE"  # a price per kWh


class OptType(StrEnum):
    OPT_IN = "optIn"
    OPT_OUT = "optOut"


class OptSource(StrEnum):
    EVENT = "event"  # the VEN's oadrCreatedEvent answer (or an oadrCreateOpt naming the event)
    SCHEDULE = "schedule"  # an opt schedule (oadrCreateOpt with availability windows)


class Ven(SQLModel, table=True):
    __tablename__ = "openadr_vens"

    ven_id: str = Field(primary_key=True, max_length=64)
    ven_name: str = Field(max_length=120, unique=True)
    account_id: uuid.UUID = Field(foreign_key="accounts.id", index=True)
    cert_fingerprint: str = Field(max_length=64)  # SHA-256 of the certificate's DER, hex
    registration_id: str | None = Field(default=None, max_length=64)
    registered_at: datetime | None = None
    active: bool = True
    created_at: datetime = Field(default_factory=utc_now)
    revoked_at: datetime | None = None
    last_contact_at: datetime | None = None  # any message (written in batches by the VTN)
    last_poll_at: datetime | None = None
    # the last TELEMETRY_STATUS report: online / load control state as the VEN sent them
    status: dict[str, object] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    status_at: datetime | None = None


class VenMeter(SQLModel, table=True):
    """A meter a VEN reports for: a report's resourceID names one of them (meter_id or name)."""

    __tablename__ = "openadr_ven_meters"

    ven_id: str = Field(foreign_key="openadr_vens.ven_id", primary_key=True, max_length=64)
    meter_id: str = Field(foreign_key="meters.meter_id", primary_key=True, max_length=66)


class VtnEvent(SQLModel, table=True):
    """An event with one signal; `intervals` is [{"start": unix s, "duration_s", "value"}]."""

    __tablename__ = "openadr_events"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    signal_name: str = Field(max_length=32)  # SignalName
    signal_type: str = Field(max_length=32)  # openleadr's SIGNAL_TYPE (level, setpoint, price..)
    market_context: str = Field(max_length=200)
    intervals: list[dict[str, float | int]] = Field(sa_column=Column(JSON, nullable=False))
    reference: str | None = Field(default=None, max_length=120)  # e.g. a DR event's id
    created_at: datetime = Field(default_factory=utc_now)


class EventDelivery(SQLModel, table=True):
    """One event for one VEN. Its `id` is the OpenADR eventID the VEN sees (openleadr keys opt
    callbacks by eventID, so each VEN gets its own). `queued_at` is set once the VTN has put it
    in the VEN's queue; `opt_type` records the VEN's oadrCreatedEvent answer."""

    __tablename__ = "openadr_event_deliveries"
    __table_args__ = (UniqueConstraint("event_id", "ven_id", name="uq_openadr_delivery"),)

    id: str = Field(primary_key=True, max_length=64)
    event_id: uuid.UUID = Field(foreign_key="openadr_events.id", index=True)
    ven_id: str = Field(foreign_key="openadr_vens.ven_id", index=True, max_length=64)
    queued_at: datetime | None = None
    opt_type: str | None = Field(default=None, max_length=8)  # OptType
    opted_at: datetime | None = None
    opt_source: str | None = Field(default=None, max_length=8)  # OptSource
    opt_id: str | None = Field(default=None, max_length=64)  # the opt schedule that decided


class ReportValue(SQLModel, table=True):
    """One value of an oadrUpdateReport: the VTN's telemetry store. `value` is in the unit's
    base (W, Wh, V...) after the report's scale; `verified` only when the VEN's account is a
    metering data provider."""

    __tablename__ = "openadr_report_values"
    __table_args__ = (Index("ix_openadr_report_values_ven_at", "ven_id", "at"),)

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    ven_id: str = Field(foreign_key="openadr_vens.ven_id", max_length=64)
    meter_id: str | None = Field(default=None, foreign_key="meters.meter_id", max_length=66)
    resource_id: str = Field(max_length=120)
    measurement: str = Field(max_length=64)
    unit: str | None = Field(default=None, max_length=32)
    at: int = Field(sa_column=Column(BigInteger, nullable=False))  # unix s (the interval start)
    value: float
    source: str = Field(default=SOURCE, max_length=16)
    verified: bool = False
    received_at: datetime = Field(default_factory=utc_now)


class OptSchedule(SQLModel, table=True):
    """An EiOpt schedule (oadrCreateOpt): the VEN opts in or out of events overlapping its
    windows (`OptWindow`), in one market context or all. Cancelled by oadrCancelOpt; a later
    schedule wins over an earlier one where they overlap."""

    __tablename__ = "openadr_opts"

    opt_id: str = Field(primary_key=True, max_length=64)
    ven_id: str = Field(foreign_key="openadr_vens.ven_id", index=True, max_length=64)
    opt_type: str = Field(max_length=8)  # OptType
    opt_reason: str = Field(max_length=32)
    market_context: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utc_now)
    cancelled_at: datetime | None = None


class OptWindow(SQLModel, table=True):
    """One availability window of an opt schedule, unix seconds [start, end)."""

    __tablename__ = "openadr_opt_windows"

    id: int | None = Field(default=None, primary_key=True)
    opt_id: str = Field(foreign_key="openadr_opts.opt_id", index=True, max_length=64)
    start: int = Field(sa_column=Column(BigInteger, nullable=False))
    end: int = Field(sa_column=Column(BigInteger, nullable=False))

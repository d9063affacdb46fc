"""VPPs and their members' consent.

A VPP is run by one account holding the `aggregator` role. A resource joins only on its owner's
request (the membership row is that consent, `consented_by`), and is in at most one VPP at a
time. Memberships are never deleted: leaving, removal, decommissioning or dissolving the VPP
stamps `left_at`, so a past schedule can still be explained by who was a member then.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, text
from sqlmodel import Field, SQLModel

from backend.core.utc import utc_now

ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")


class MembershipEnd(StrEnum):
    """Why a membership ended."""

    LEFT = "left"  # the owner withdrew consent
    REMOVED = "removed"  # the aggregator removed the resource
    DECOMMISSIONED = "decommissioned"  # the resource was retired
    DISSOLVED = "dissolved"  # the VPP was deleted


class Vpp(SQLModel, table=True):
    __tablename__ = "vpps"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=120)
    aggregator_id: uuid.UUID = Field(foreign_key="accounts.id", index=True)
    grid_area: str | None = Field(default=None, max_length=32)  # None: members from any area
    description: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
    dissolved_at: datetime | None = None  # DELETE /v1/vpp/{id}: kept for history


class VppMembership(SQLModel, table=True):
    __tablename__ = "vpp_memberships"
    __table_args__ = (
        Index(
            "uq_vpp_memberships_open_resource",
            "resource_id",
            unique=True,
            postgresql_where=text("left_at IS NULL"),
            sqlite_where=text("left_at IS NULL"),
        ),
    )

    id: int | None = Field(
        default=None, sa_column=Column(ID_TYPE, primary_key=True, autoincrement=True)
    )
    vpp_id: uuid.UUID = Field(foreign_key="vpps.id", index=True)
    resource_id: uuid.UUID = Field(foreign_key="der_resources.id")
    consented_by: uuid.UUID = Field(foreign_key="accounts.id")  # the resource's owner
    joined_at: datetime = Field(default_factory=utc_now)
    left_at: datetime | None = None
    ended_by: str | None = Field(default=None, max_length=16)  # MembershipEnd


class ScheduleKind(StrEnum):
    PLAN = "plan"  # an optimisation run
    PATCH = "patch"  # its `parent` plus the discharge filled orders rely on (flex_delivery.py)


class VppSchedule(SQLModel, table=True):
    """One optimisation run, stored with its inputs (prices, forecasts, constraints and each
    member's parameters as used) so the schedule can be explained after the fact; or a patch
    of one (`kind`, `parent_id`)."""

    __tablename__ = "vpp_schedules"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    vpp_id: uuid.UUID = Field(foreign_key="vpps.id", index=True)
    requested_by: uuid.UUID = Field(foreign_key="accounts.id")
    start: int = Field(sa_column=Column(BigInteger, nullable=False))  # unix s of slot 0
    slot_seconds: int = 900
    status: str = Field(max_length=16)  # DispatchStatus
    cost: int = Field(sa_column=Column(BigInteger, nullable=False))  # token units, rounded
    inputs: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    result: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    kind: str = Field(default=ScheduleKind.PLAN.value, max_length=8)  # ScheduleKind
    parent_id: uuid.UUID | None = Field(default=None, foreign_key="vpp_schedules.id")
    created_at: datetime = Field(default_factory=utc_now)


class VppDailySchedule(SQLModel, table=True):
    """The daily optimisation's run for one VPP and one UTC day: the primary key makes the
    beat's task idempotent (a second run of the same day finds the row and does nothing)."""

    __tablename__ = "vpp_daily_schedules"

    vpp_id: uuid.UUID = Field(foreign_key="vpps.id", primary_key=True)
    day_start: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    schedule_id: uuid.UUID = Field(foreign_key="vpp_schedules.id")
    created_at: datetime = Field(default_factory=utc_now)


class CommandKind(StrEnum):
    """What goes down to a device (backend/vpp/downlink.py has the payloads)."""

    SCHEDULE = "schedule"  # a day of setpoints, on `…/command`
    SETPOINT = "setpoint"  # one setpoint until a time, on `…/command`
    CONFIG = "config"  # limits and reporting interval, on `…/config`


class CommandState(StrEnum):
    """pending → sent (the broker took it, QoS 1) → acked (the device acknowledged it in time);
    sent → late when no acknowledgement came by `ack_by` (a late acknowledgement is recorded
    in `acked_at` but the command stays late); failed when the device rejected it or it could
    not be published within the attempts allowed."""

    PENDING = "pending"
    SENT = "sent"
    ACKED = "acked"
    LATE = "late"
    FAILED = "failed"


class DispatchCommand(SQLModel, table=True):
    """One message to one device, with its delivery and acknowledgement state."""

    __tablename__ = "dispatch_commands"
    __table_args__ = (
        Index("ix_dispatch_commands_vpp_created", "vpp_id", "created_at"),
        Index("ix_dispatch_commands_state", "state"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)  # the commandId
    vpp_id: uuid.UUID = Field(foreign_key="vpps.id")
    schedule_id: uuid.UUID | None = Field(default=None, foreign_key="vpp_schedules.id")
    resource_id: uuid.UUID = Field(foreign_key="der_resources.id", index=True)
    kind: str = Field(max_length=16)  # CommandKind
    topic: str = Field(max_length=255)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    state: str = Field(default=CommandState.PENDING.value, max_length=16)  # CommandState
    attempts: int = 0
    created_at: datetime = Field(default_factory=utc_now)
    sent_at: datetime | None = None
    ack_by: datetime | None = None  # sent_at + the acknowledgement timeout
    acked_at: datetime | None = None
    ack_result: str | None = Field(default=None, max_length=16)  # accepted | rejected
    detail: str | None = Field(default=None, max_length=200)  # why it failed, the device's note

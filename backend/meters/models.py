"""Meters, their interval readings and the audit trail of corrected readings.

Times are Unix seconds (UTC), like the chain and the indexer mirror, so a reading joins a
trade's `delivery_start`/`delivery_end` without conversion. Energy is integer Wh.
A reading covers one 15-minute settlement interval, so the readings table *is* the
15-minute aggregate per meter; hourly figures are sums of four rows.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, Index, Integer
from sqlmodel import Field, SQLModel

from backend.core.utc import utc_now

INTERVAL_SECONDS = 900

# BIGINT ids on PostgreSQL; INTEGER on SQLite, where only that autoincrements (rowid alias).
ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")


class MeterKind(StrEnum):
    IMPORT = "import"  # consumption only
    EXPORT = "export"  # generation only
    BOTH = "both"


class MeterStatus(StrEnum):
    """A meter's standing with the registrar (mirrors `RECRegistry.MeterStatus`)."""

    PENDING = (
        "pending"  # registered by its owner, not yet approved: its signatures count for nothing
    )
    APPROVED = "approved"  # readings signed with `signing_key` are verified
    SUSPENDED = "suspended"  # approval withdrawn; re-approval restores it


class Meter(SQLModel, table=True):
    """A registered smart meter; `meter_id` is the bytes32 id the market uses on chain.

    `capacity_w` is what the owner declared; `approved_capacity_w` what the registrar approved,
    the cap on export once approved. `signing_key` is the address the meter signs readings with
    (EIP-712, backend/meters/signing.py)."""

    __tablename__ = "meters"

    meter_id: str = Field(primary_key=True, max_length=66)  # 0x + keccak(text=name)
    name: str = Field(max_length=120, unique=True)
    owner_id: uuid.UUID = Field(foreign_key="accounts.id", index=True)
    kind: str = Field(default=MeterKind.BOTH.value, max_length=8)
    capacity_w: int = Field(sa_column=Column(BigInteger, nullable=False))
    device_id: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True)
    )  # REC device
    mqtt_password_hash: str | None = Field(default=None, max_length=255)
    status: str = Field(default=MeterStatus.PENDING.value, max_length=16)  # MeterStatus
    signing_key: str | None = Field(default=None, max_length=42)  # checksummed address
    approved_capacity_w: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True)
    )
    approved_by: uuid.UUID | None = Field(default=None, foreign_key="accounts.id")
    approved_at: datetime | None = None
    created_at: datetime = Field(default_factory=utc_now)

    def export_capacity_w(self) -> int:
        """The cap on export: the approved capacity once there is one, else the declared one."""
        return self.capacity_w if self.approved_capacity_w is None else self.approved_capacity_w


class MeterReading(SQLModel, table=True):
    """The current value of one meter interval. A changed value bumps `revision` and leaves a
    `ReadingCorrection` row with the previous value; nothing is overwritten silently.

    `verified`: signed by the meter's approved key (`signature`, recovered to `signer`) or
    posted by a metering data provider (`signer` is the provider's address). Only verified
    readings settle trades or issue certificates; unverified ones are stored and shown."""

    __tablename__ = "meter_readings"

    # keyed by the interval, no surrogate id: one B-tree entry per stored reading (migration
    # i16_reading_key). No foreign key: the ingest resolves every reading's meter first, and
    # bulk COPY runs at half speed with a per-row RI check (migration i16_reading_ingest)
    meter_id: str = Field(primary_key=True, max_length=66)
    interval_start: int = Field(sa_column=Column(BigInteger, primary_key=True))
    interval_s: int = Field(default=INTERVAL_SECONDS)
    import_wh: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    export_wh: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    voltage_v: float | None = None
    current_a: float | None = None
    power_factor: float | None = None
    quality: str | None = Field(default=None, max_length=16)
    revision: int = 0
    source: str = Field(max_length=16)  # rest | mqtt | bulk
    verified: bool = False
    signature: str | None = Field(default=None, max_length=132)  # 0x + 65 bytes
    signer: str | None = Field(default=None, max_length=42)
    received_at: datetime = Field(default_factory=utc_now)


class ReadingCorrection(SQLModel, table=True):
    """Audit trail: a reading for an interval already stored arrived with different values."""

    __tablename__ = "reading_corrections"
    __table_args__ = (Index("ix_reading_corrections_interval", "meter_id", "interval_start"),)

    id: int | None = Field(
        default=None, sa_column=Column(ID_TYPE, primary_key=True, autoincrement=True)
    )
    meter_id: str = Field(max_length=66)
    interval_start: int = Field(sa_column=Column(BigInteger, nullable=False))
    revision: int  # the reading's revision after this correction
    previous_import_wh: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True)
    )
    previous_export_wh: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True)
    )
    import_wh: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    export_wh: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    previous_verified: bool = False
    previous_signer: str | None = Field(default=None, max_length=42)
    verified: bool = False  # of the new value
    signer: str | None = Field(default=None, max_length=42)  # who vouches for the new value
    source: str = Field(max_length=16)
    received_at: datetime = Field(default_factory=utc_now)

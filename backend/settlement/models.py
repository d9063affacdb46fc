"""Reconciliation of trades against metered delivery, on-chain batches, REC issuance.

`settlement_batches` is a write-ahead log of every transaction the workers send: the signed
raw transaction is committed before it is broadcast, so a worker killed at any point can be
resumed by re-broadcasting the same bytes (same hash, same nonce) instead of signing anew.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.core.utc import utc_now


class ReconciliationStatus(StrEnum):
    """A trade's reconciliation against meter data, up to its on-chain settlement."""

    PENDING = "pending"  # reconciled, not sent (again: a reverted or dropped batch returns here)
    SUBMITTED = "submitted"  # in a logged settleBatch whose outcome is not known yet
    SETTLED = "settled"  # its settleBatch was mined (receipt status 1)
    CLOSED = "closed"  # not Open on chain before we sent it (reclaimed, or settled by another)
    FAILED = "failed"  # the chain refuses to settle it even alone; `failure` says why


class BatchKind(StrEnum):
    """Which call a logged transaction makes, and so which key signs it."""

    SETTLE = "settle"  # EnergyMarket.settleBatch, SETTLER key
    ISSUE = "issue"  # RECRegistry.issueBatch, ISSUER key
    DR_SETTLE = "dr"  # DemandResponse.settle, SETTLER key


class BatchStatus(StrEnum):
    """A signed transaction logged before broadcast (write-ahead)."""

    SIGNED = "signed"  # logged (maybe broadcast), outcome not known yet
    MINED = "mined"  # mined with receipt status 1
    REVERTED = "reverted"  # mined with receipt status 0
    DROPPED = "dropped"  # its nonce was used by another transaction: it can never be mined


class IssuanceStatus(StrEnum):
    """One device-hour of REC issuance."""

    PENDING = "pending"  # recorded, not sent (again: a reverted or dropped batch returns here)
    SUBMITTED = "submitted"  # in a logged issueBatch whose outcome is not known yet
    ISSUED = "issued"  # its issueBatch was mined
    SKIPPED = "skipped"  # no export in the hour: nothing to issue
    CLOSED = "closed"  # the registry already had the hour issued (isPeriodIssued)
    REFUSED = "refused"  # storage sat behind the device's meter (resources/certified_meters.py)


# BIGINT ids on PostgreSQL; INTEGER on SQLite, where only that autoincrements (rowid alias).
ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")


def big(nullable: bool = False) -> Column[int]:
    return Column(BigInteger, nullable=nullable)


class Reconciliation(SQLModel, table=True):
    """What a trade's seller contracted, what its meter measured and what the chain is told."""

    __tablename__ = "reconciliations"
    __table_args__ = (Index("ix_reconciliations_period", "period_end", "status"),)

    trade_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    period_start: int = Field(sa_column=big())
    period_end: int = Field(sa_column=big())
    seller: str = Field(max_length=42)
    seller_meter: str = Field(max_length=66, index=True)
    contracted_wh: int = Field(sa_column=big())
    metered_wh: int = Field(sa_column=big())  # the seller meter's export over the trade's period
    allocated_wh: int = Field(sa_column=big())  # this trade's pro-rata share of metered_wh
    delivered_wh: int = Field(sa_column=big())  # min(allocated, contracted): sent on chain
    shortfall_wh: int = Field(sa_column=big())
    expected_payout: int = Field(sa_column=big())
    expected_penalty: int = Field(sa_column=big())
    expected_refund: int = Field(sa_column=big())
    data_missing: bool = False
    # slots of the trade with only unverified readings (owner-posted, unsigned): counted missing
    unverified_slots: int = 0
    status: str = Field(default=ReconciliationStatus.PENDING.value, max_length=16)
    failure: str | None = Field(default=None, max_length=500)  # why the chain refuses it (failed)
    batch_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    settled_tx: str | None = Field(default=None, max_length=66)
    computed_at: datetime = Field(default_factory=utc_now)
    settled_at: datetime | None = None


class SettlementBatch(SQLModel, table=True):
    """One signed transaction (settleBatch or issueBatch), logged before it is broadcast."""

    __tablename__ = "settlement_batches"

    id: int | None = Field(
        default=None, sa_column=Column(ID_TYPE, primary_key=True, autoincrement=True)
    )
    kind: str = Field(max_length=8)  # a BatchKind
    sender: str = Field(max_length=42)
    nonce: int = Field(sa_column=big())
    tx_hash: str = Field(max_length=66, unique=True)
    raw_tx: str = Field(sa_column=Column(Text, nullable=False))
    items: int
    status: str = Field(default=BatchStatus.SIGNED.value, max_length=12)
    created_at: datetime = Field(default_factory=utc_now)
    resolved_at: datetime | None = None


class SettlementCorrection(SQLModel, table=True):
    """A reading changed after its trade was settled: the difference, recorded, not re-settled."""

    __tablename__ = "settlement_corrections"
    __table_args__ = (
        UniqueConstraint("trade_id", "corrected_metered_wh", name="uq_settlement_corrections"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(ID_TYPE, primary_key=True, autoincrement=True)
    )
    trade_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    settled_metered_wh: int = Field(sa_column=big())
    settled_delivered_wh: int = Field(sa_column=big())
    corrected_metered_wh: int = Field(sa_column=big())
    corrected_delivered_wh: int = Field(sa_column=big())
    payout_delta: int = Field(sa_column=big())  # seller net (gross - penalty): corrected - settled
    created_at: datetime = Field(default_factory=utc_now)


class RecIssuance(SQLModel, table=True):
    """One device-hour of metered renewable export, issued as one certificate exactly once."""

    __tablename__ = "rec_issuances"
    __table_args__ = (
        UniqueConstraint("device_id", "hour_start", name="uq_rec_issuances_device_hour"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(ID_TYPE, primary_key=True, autoincrement=True)
    )
    device_id: int = Field(sa_column=big())
    meter_id: str = Field(max_length=66)
    owner: str = Field(max_length=42)
    hour_start: int = Field(sa_column=big())
    volume_wh: int = Field(sa_column=big())
    data_missing: bool = False
    status: str = Field(default=IssuanceStatus.PENDING.value, max_length=16)
    batch_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    issued_tx: str | None = Field(default=None, max_length=66)
    created_at: datetime = Field(default_factory=utc_now)


class DiscrepancyFlag(SQLModel, table=True):
    """Something an operator should look at: `oversold` (a seller meter sold more in a slot than
    its device can produce), `silent` (a meter stopped reporting), `contradicted` (a reading
    was revised by more than 10 % of its value)."""

    __tablename__ = "discrepancy_flags"
    __table_args__ = (
        UniqueConstraint("kind", "meter_id", "period_start", name="uq_discrepancy_flags"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(ID_TYPE, primary_key=True, autoincrement=True)
    )
    kind: str = Field(max_length=16)
    meter_id: str = Field(max_length=66, index=True)
    period_start: int = Field(sa_column=big())
    detail: str = Field(max_length=500)
    created_at: datetime = Field(default_factory=utc_now)

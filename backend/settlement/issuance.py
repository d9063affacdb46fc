"""REC issuance: one granular certificate per approved renewable device per hour of metered
export, batched per device with `issueBatch` (ISSUER key), exactly once per device-hour.

`rec_issuances` is unique on (device, hour): a device-hour is recorded once. Before sending,
the registry's `isPeriodIssued` is asked for every hour; an hour already issued on chain is
marked `closed`, never sent again. Transactions go through the same write-ahead log as
settlement (chain.py), so a worker killed mid-batch resumes the same transaction.

Each certificate commits to its readings: the evidence root (backend/recs/evidence.py) of the
EIP-712 digests of the device-hour's export readings goes into `CertificateIssued`.

A device-hour whose meter had a battery or EV charger behind it is `refused`, never sent: a
wallet can register a device on chain without the API's check (backend/resources/
certified_meters.py), so this is where storage discharge is kept from being certified as solar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from eth_utils import to_checksum_address
from sqlalchemy import func
from sqlmodel import Session, col, select

from backend.core.config import Settings
from backend.meters.models import MeterReading
from backend.meters.runs import day_bounds
from backend.meters.signing import SignedValues, reading_digest
from backend.recs.evidence import evidence_root
from backend.resources.certified_meters import Span, storage_refuses, storage_spans
from backend.settlement.chain import (
    PERIOD_ALREADY_ISSUED,
    BatchRejected,
    ChainContext,
    send_logged,
)
from backend.settlement.locks import ISSUER_KEY, Locks, hold_signing_key
from backend.settlement.models import (
    BatchKind,
    BatchStatus,
    IssuanceStatus,
    RecIssuance,
)
from backend.settlement.outcomes import SettledKind
from backend.settlement.sending import chunked
from backend.settlement.services import missing_data_deadline
from backend.settlement.sql import insert_ignoring_conflicts
from indexer.models import Device, DeviceStatus

HOUR = 3600


@dataclass
class IssuanceReport:
    recorded: int = 0
    issued: int = 0
    already_issued: int = 0
    skipped: int = 0
    refused: int = 0
    batches: list[str] = field(default_factory=list)


def record_due_hours(
    session: Session, *, now: int, deadline_s: int, gate_s: int, lookback_s: int
) -> IssuanceReport:
    """Insert a `rec_issuances` row for every closed device-hour with verified metered export
    (an hour with unverified quarters only counts them as missing); `refused` when storage
    sat behind the meter."""
    report = IssuanceReport()
    devices = session.exec(select(Device).where(Device.status == DeviceStatus.APPROVED)).all()
    values: list[dict[str, Any]] = []
    for device in devices:
        meter = device.meter_id.lower()
        storage = storage_spans(session, meter)
        rows = session.exec(
            select(
                (col(MeterReading.interval_start) // HOUR).label("hour"),
                func.sum(MeterReading.export_wh),
                func.count(col(MeterReading.export_wh)),
            )
            .where(
                MeterReading.meter_id == meter,
                col(MeterReading.verified).is_(True),  # only verified export issues RECs
                MeterReading.interval_start >= max(now - lookback_s, 0),
                MeterReading.interval_start < now - gate_s - HOUR + 1,
                *day_bounds(session, max(now - lookback_s, 0), now - gate_s - HOUR + 1),
            )
            .group_by("hour")
        ).all()
        for hour, volume, count in rows:
            start = int(hour) * HOUR
            if start + HOUR + gate_s > now or start < device.commissioned_at:
                continue
            if count < 4 and now < start + HOUR + deadline_s:
                continue  # wait for the missing quarters
            volume = min(int(volume or 0), device.capacity_w)  # at most capacity x 1 h
            status = IssuanceStatus.PENDING if volume > 0 else IssuanceStatus.SKIPPED
            if storage_refuses(storage, start):
                status = IssuanceStatus.REFUSED
            values.append(
                {
                    "device_id": device.device_id,
                    "meter_id": meter,
                    "owner": device.owner,
                    "hour_start": start,
                    "volume_wh": volume,
                    "data_missing": count < 4,
                    "status": status.value,
                    "created_at": datetime.now(UTC),
                }
            )
    if values:
        statement = insert_ignoring_conflicts(session, RecIssuance, ["device_id", "hour_start"])
        before = session.exec(select(func.count()).select_from(RecIssuance)).one()
        session.connection().execute(statement, values)
        report.recorded = session.exec(select(func.count()).select_from(RecIssuance)).one() - before
    session.commit()
    return report


ISSUANCES = SettledKind(
    RecIssuance,
    BatchKind.ISSUE,
    IssuanceStatus.ISSUED,
    IssuanceStatus.PENDING,
    tx_column="issued_tx",
    at_column=None,
)


def evidence_roots(session: Session, ctx: ChainContext, rows: list[RecIssuance]) -> list[bytes]:
    """Per device-hour of one meter, the evidence root of the verified export readings behind it
    (the same readings `record_due_hours` counted)."""
    chain_id, registry = ctx.w3.eth.chain_id, ctx.registry.address
    meter = rows[0].meter_id
    readings = session.exec(
        select(MeterReading).where(
            MeterReading.meter_id == meter,
            col(MeterReading.export_wh).is_not(None),
            col(MeterReading.verified).is_(True),
            MeterReading.interval_start >= min(r.hour_start for r in rows),
            MeterReading.interval_start < max(r.hour_start for r in rows) + HOUR,
            *day_bounds(
                session,
                min(r.hour_start for r in rows),
                max(r.hour_start for r in rows) + HOUR,
            ),
        )
    ).all()
    leaves: dict[int, list[bytes]] = {}
    for reading in readings:
        values = SignedValues(
            bytes.fromhex(meter[2:]),
            reading.interval_start,
            reading.interval_s,
            reading.import_wh or 0,
            reading.export_wh or 0,
        )
        hour = reading.interval_start // HOUR * HOUR
        leaves.setdefault(hour, []).append(reading_digest(values, chain_id, registry))
    return [evidence_root(leaves[r.hour_start]) for r in rows]


def issue_pending(
    session: Session, ctx: ChainContext, *, batch_size: int, report: IssuanceReport
) -> None:
    """Send pending device-hours; caller holds the ISSUER key lock."""
    if not ISSUANCES.recover(session, ctx):
        return  # a logged transaction is still undecided: nothing new until it is
    pending = session.exec(
        select(RecIssuance)
        .where(RecIssuance.status == IssuanceStatus.PENDING)
        .order_by(col(RecIssuance.device_id), col(RecIssuance.hour_start))
    ).all()
    by_device: dict[int, list[RecIssuance]] = {}
    storage: dict[str, list[Span]] = {}
    for row in pending:
        if row.meter_id not in storage:
            storage[row.meter_id] = storage_spans(session, row.meter_id)
        if storage_refuses(storage[row.meter_id], row.hour_start):
            row.status = IssuanceStatus.REFUSED  # storage arrived after the hour was recorded
            session.add(row)
        elif ctx.registry.functions.isPeriodIssued(
            row.device_id, row.hour_start, row.hour_start + HOUR
        ).call():
            row.status = IssuanceStatus.CLOSED
            session.add(row)
            report.already_issued += 1
        else:
            by_device.setdefault(row.device_id, []).append(row)
    session.commit()
    for device_id, rows in by_device.items():
        for chunk in chunked(rows, batch_size):
            call = ctx.registry.functions.issueBatch(
                device_id,
                to_checksum_address(chunk[0].owner),
                [r.hour_start for r in chunk],
                [r.hour_start + HOUR for r in chunk],
                [r.volume_wh for r in chunk],
                evidence_roots(session, ctx, chunk),
            )
            try:
                batch, status = send_logged(
                    session,
                    ctx,
                    kind=BatchKind.ISSUE,
                    account=ctx.issuer,
                    call=call,
                    items=chunk,
                    submitted=IssuanceStatus.SUBMITTED,
                )
            except BatchRejected as exc:
                if exc.is_error(PERIOD_ALREADY_ISSUED):
                    continue  # the next run marks the issued hours closed via isPeriodIssued
                raise
            if status == BatchStatus.SIGNED:
                return  # not mined within the timeout: the next run resolves it
            ISSUANCES.apply(session, batch, status)
            if status == BatchStatus.MINED:
                report.issued += len(chunk)
                report.batches.append(batch.tx_hash)


def issue_certificates(
    session: Session,
    ctx: ChainContext,
    locks: Locks,
    settings: Settings,
    now: int | None = None,
    lookback_s: int = 7 * 86_400,
) -> IssuanceReport:
    now = ctx.now() if now is None else now
    report = record_due_hours(
        session,
        now=now,
        deadline_s=missing_data_deadline(ctx, settings),
        gate_s=settings.settlement_gate_delay_s,
        lookback_s=lookback_s,
    )
    with hold_signing_key(locks, ISSUER_KEY, settings) as held:
        if held:
            issue_pending(session, ctx, batch_size=settings.rec_batch_size, report=report)
    report.skipped, report.refused = (
        session.exec(
            select(func.count()).select_from(RecIssuance).where(RecIssuance.status == status)
        ).one()
        for status in (IssuanceStatus.SKIPPED, IssuanceStatus.REFUSED)
    )
    return report

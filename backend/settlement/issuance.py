"""REC issuance: one granular certificate per approved renewable device per hour of metered
export, batched per device with `issueBatch` (ISSUER key), exactly once per device-hour.

`rec_issuances` is unique on (device, hour): a device-hour is recorded once. Before sending,
the registry's `isPeriodIssued` is asked for every hour; an hour already issued on chain is
marked `closed`, never sent again. Transactions go through the same write-ahead log as
settlement (chain.py), so a worker killed mid-batch resumes the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, select
from web3 import Web3

from backend.core.config import Settings
from backend.meters.models import MeterReading
from backend.settlement.chain import (
    PERIOD_ALREADY_ISSUED,
    BatchRejected,
    ChainContext,
    broadcast,
    log_batch,
    resolve_batch,
    sign_call,
    unresolved_batches,
)
from backend.settlement.models import RecIssuance, SettlementBatch
from backend.settlement.services import missing_data_deadline
from indexer.models import Device

HOUR = 3600


@dataclass
class IssuanceReport:
    recorded: int = 0
    issued: int = 0
    already_issued: int = 0
    skipped: int = 0
    batches: list[str] = field(default_factory=list)


def record_due_hours(
    session: Session, now: int, deadline_s: int, gate_s: int, lookback_s: int
) -> IssuanceReport:
    """Insert a `rec_issuances` row for every closed device-hour with metered export."""
    report = IssuanceReport()
    devices = session.exec(select(Device).where(Device.status == "approved")).all()
    values = []
    for device in devices:
        meter = device.meter_id.lower()
        rows = session.exec(
            select(
                (MeterReading.interval_start // HOUR).label("hour"),
                func.sum(MeterReading.export_wh),
                func.count(MeterReading.export_wh),
            )
            .where(
                MeterReading.meter_id == meter,
                MeterReading.interval_start >= max(now - lookback_s, 0),
                MeterReading.interval_start < now - gate_s - HOUR + 1,
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
            values.append(
                {
                    "device_id": device.device_id,
                    "meter_id": meter,
                    "owner": device.owner,
                    "hour_start": start,
                    "volume_wh": volume,
                    "data_missing": count < 4,
                    "status": "pending" if volume > 0 else "skipped",
                    "created_at": datetime.now(UTC),
                }
            )
    if values:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        statement = insert(RecIssuance.__table__).on_conflict_do_nothing(
            index_elements=["device_id", "hour_start"]
        )
        before = session.exec(select(func.count()).select_from(RecIssuance)).one()
        session.connection().execute(statement, values)
        report.recorded = session.exec(select(func.count()).select_from(RecIssuance)).one() - before
    session.commit()
    return report


def apply_outcome(session: Session, batch: SettlementBatch, status: str) -> None:
    for row in session.exec(select(RecIssuance).where(RecIssuance.batch_id == batch.id)).all():
        if status == "mined":
            row.status, row.issued_tx = "issued", batch.tx_hash
        else:
            row.status, row.batch_id = "pending", None
        session.add(row)
    session.commit()


def issue_pending(
    session: Session, ctx: ChainContext, batch_size: int, report: IssuanceReport
) -> None:
    """Send pending device-hours; caller holds the ISSUER key lock."""
    for batch in unresolved_batches(session, "issue"):
        status = resolve_batch(session, ctx, batch)
        if status == "signed":
            return  # a logged transaction is still undecided: nothing new until it is
        apply_outcome(session, batch, status)
    pending = session.exec(
        select(RecIssuance)
        .where(RecIssuance.status == "pending")
        .order_by(RecIssuance.device_id, RecIssuance.hour_start)
    ).all()
    by_device: dict[int, list[RecIssuance]] = {}
    for row in pending:
        if ctx.registry.functions.isPeriodIssued(
            row.device_id, row.hour_start, row.hour_start + HOUR
        ).call():
            row.status = "closed"
            session.add(row)
            report.already_issued += 1
        else:
            by_device.setdefault(row.device_id, []).append(row)
    session.commit()
    for device_id, rows in by_device.items():
        for first in range(0, len(rows), batch_size):
            chunk = rows[first : first + batch_size]
            call = ctx.registry.functions.issueBatch(
                device_id,
                Web3.to_checksum_address(chunk[0].owner),
                [r.hour_start for r in chunk],
                [r.hour_start + HOUR for r in chunk],
                [r.volume_wh for r in chunk],
            )
            try:
                nonce, tx_hash, raw = sign_call(ctx, ctx.issuer, call)
            except BatchRejected as exc:
                if exc.is_error(PERIOD_ALREADY_ISSUED):
                    continue  # the next run marks the issued hours closed via isPeriodIssued
                raise
            batch = log_batch(session, "issue", ctx.issuer.address, nonce, tx_hash, raw, len(chunk))
            for row in chunk:
                row.status, row.batch_id = "submitted", batch.id
                session.add(row)
            session.commit()
            broadcast(ctx, batch)
            status = resolve_batch(session, ctx, batch)
            if status == "signed":
                return
            apply_outcome(session, batch, status)
            if status == "mined":
                report.issued += len(chunk)
                report.batches.append(tx_hash)


def issue_certificates(
    session: Session,
    ctx: ChainContext,
    locks,
    settings: Settings,
    now: int | None = None,
    lookback_s: int = 7 * 86_400,
) -> IssuanceReport:
    now = ctx.now() if now is None else now
    report = record_due_hours(
        session,
        now,
        missing_data_deadline(ctx, settings),
        settings.settlement_gate_delay_s,
        lookback_s,
    )
    with locks.hold(
        "issuer-key", settings.settlement_lock_timeout_s, wait_s=settings.settlement_lock_timeout_s
    ) as held:
        if held:
            issue_pending(session, ctx, settings.rec_batch_size, report)
    report.skipped = session.exec(
        select(func.count()).select_from(RecIssuance).where(RecIssuance.status == "skipped")
    ).one()
    return report

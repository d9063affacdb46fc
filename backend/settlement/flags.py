"""Discrepancy flags for operators; each (kind, meter, period) is flagged once."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func
from sqlmodel import Session, select

from backend.meters.models import INTERVAL_SECONDS, Meter, MeterReading, ReadingCorrection
from backend.settlement.allocation import TradeTerms
from backend.settlement.models import DiscrepancyFlag
from backend.settlement.sql import insert_ignoring_conflicts

CONTRADICTION_RATIO = 0.10


def raise_flag(
    session: Session, *, kind: str, meter_id: str, period_start: int, detail: str
) -> None:
    session.connection().execute(
        insert_ignoring_conflicts(session, DiscrepancyFlag, ["kind", "meter_id", "period_start"]),
        {
            "kind": kind,
            "meter_id": meter_id,
            "period_start": period_start,
            "detail": detail[:500],
            "created_at": datetime.now(UTC),
        },
    )


def flag_oversold(session: Session, meter_id: str, trades: list[TradeTerms]) -> None:
    """Flag the slots in which `meter_id` sold more than its device can produce in 15 minutes."""
    meter = session.get(Meter, meter_id)
    if meter is None:
        return
    limit = meter.capacity_w * INTERVAL_SECONDS // 3600
    sold: dict[int, float] = {}
    for trade in trades:
        for slot in trade.slots():
            sold[slot] = sold.get(slot, 0) + trade.quantity_wh * INTERVAL_SECONDS / (
                trade.end - trade.start
            )
    for slot, wh in sold.items():
        if wh > limit:
            raise_flag(
                session,
                kind="oversold",
                meter_id=meter_id,
                period_start=slot,
                detail=f"sold {wh:.0f} Wh in the slot; "
                f"the device produces at most {limit} Wh in 15 minutes",
            )


def scan_meters(
    session: Session, now: int, *, silence_s: int = 3_600, lookback_s: int = 7 * 86_400
) -> int:
    """Flag meters silent for `silence_s` and readings revised by more than 10 %; returns the
    number of flags now stored."""
    last_seen = session.exec(
        select(MeterReading.meter_id, func.max(MeterReading.interval_start))
        .where(MeterReading.interval_start >= now - lookback_s)
        .group_by(MeterReading.meter_id)
    ).all()
    for meter_id, last in last_seen:
        if last + INTERVAL_SECONDS + silence_s <= now:
            raise_flag(
                session,
                kind="silent",
                meter_id=meter_id,
                period_start=last + INTERVAL_SECONDS,
                detail=f"no reading since the interval starting {last} (checked at {now})",
            )
    corrections = session.exec(
        select(ReadingCorrection).where(ReadingCorrection.interval_start >= now - lookback_s)
    ).all()
    for c in corrections:
        for direction, before, after in (
            ("export", c.previous_export_wh, c.export_wh),
            ("import", c.previous_import_wh, c.import_wh),
        ):
            if (
                before is not None
                and after is not None
                and abs(after - before) > CONTRADICTION_RATIO * max(before, 1)
            ):
                raise_flag(
                    session,
                    kind="contradicted",
                    meter_id=c.meter_id,
                    period_start=c.interval_start,
                    detail=(
                        f"{direction} revised from {before} Wh to {after} Wh "
                        f"(revision {c.revision})"
                    ),
                )
    session.commit()
    return session.exec(select(func.count()).select_from(DiscrepancyFlag)).one()

"""Verified 15-minute readings as day profiles, the input of the baseline methods.

Load is net import, `import_wh - export_wh` (a missing side counts 0). Only VERIFIED readings
count (signed by the meter's approved key or posted by a metering data provider); an interval
without one is None, and a day with any None is not eligible as a baseline day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlmodel import Session, col, select

from backend.dr.baselines import INTERVAL_SECONDS, INTERVALS_PER_DAY
from backend.meters.models import MeterReading


def day_start(day: date) -> int:
    """Unix seconds of 00:00 UTC on `day`."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def utc_day(ts: int) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


def verified_day_loads(
    session: Session, meter_id: str, *, first: date, last: date
) -> dict[date, list[int | None]]:
    """Every day in [first, last] with 96 intervals of verified net load (None where missing)."""
    start, end = day_start(first), day_start(last + timedelta(days=1))
    rows = session.exec(
        select(MeterReading.interval_start, MeterReading.import_wh, MeterReading.export_wh)
        .where(
            MeterReading.meter_id == meter_id,
            col(MeterReading.interval_start) >= start,
            col(MeterReading.interval_start) < end,
            col(MeterReading.verified).is_(True),
        )
        .order_by(col(MeterReading.interval_start))
    ).all()
    days: dict[date, list[int | None]] = {}
    for interval_start, import_wh, export_wh in rows:
        if interval_start % INTERVAL_SECONDS:
            continue  # not on a 15-minute boundary: not a settlement interval
        day = utc_day(interval_start)
        profile = days.setdefault(day, [None] * INTERVALS_PER_DAY)
        profile[(interval_start - day_start(day)) // INTERVAL_SECONDS] = (import_wh or 0) - (
            export_wh or 0
        )
    return days


def complete_days(days: dict[date, list[int | None]]) -> dict[date, list[int]]:
    """Only the days with all 96 intervals (eligible as baseline days)."""
    return {d: [v for v in p if v is not None] for d, p in days.items() if None not in p}

"""The daily optimisation (beat task `vpp.optimize_daily`): every active VPP with members gets
a schedule for the next UTC day, on behalf of its aggregator, built like `POST
/v1/vpp/{id}/optimize` and stored with its inputs; then the schedule goes down to the devices
(backend/vpp/downlink.py).

Inputs, all recorded in the schedule's `inputs.daily`:
- prices: the market's energy trades of the last `vpp_price_lookback_days` days, the
  volume-weighted mean price (per kWh, token units) of each quarter hour of the day; a quarter
  hour without trades takes the mean of all of them, and a market without trades
  `vpp_default_price_per_kwh`. Buying and selling are priced alike (the market's price);
- generation: the VPP's latest stored generation forecast (target `vppGeneration`: its PV
  members' output, backend/forecast) that covers the day, negative values read as 0; without
  one, a forecast for the day is made and stored; with too little history the day is planned
  with no generation (storage and loads are what the plan decides: their history stays out);
- demand: the same for the VPP's demand forecast (target `vppDemand`: what the members' homes
  consume beyond what the members make, from their meters and telemetry), which the schedule
  serves or leaves unmet at `vpp_unmet_penalty_per_kwh`; with too little meter history, none.

Idempotent per VPP and day: `vpp_daily_schedules` has one row per (VPP, day), written with the
schedule in one transaction; a second run (another beat tick, a retry, a second worker) finds
it and leaves the day alone. A VPP's failure is named in the report, never hides the others.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from backend.accounts.models import Account
from backend.chain import clock
from backend.core.config import Settings
from backend.core.errors import GridLedgerError
from backend.forecast.errors import InsufficientHistory, WeatherUnavailable
from backend.forecast.models import StoredForecast, TargetKind
from backend.forecast.schemas import ForecastRequest
from backend.forecast.services import run_forecast
from backend.forecast.weather import WeatherProvider
from backend.vpp import downlink
from backend.vpp.dispatch import SLOTS
from backend.vpp.models import Vpp, VppDailySchedule, VppSchedule
from backend.vpp.optimize import SLOT_SECONDS, optimize_vpp
from backend.vpp.schemas import OptimizeRequest
from backend.vpp.services import members
from indexer.models import Trade

DAY = 86_400


def next_day(now: datetime) -> int:
    return (int(now.timestamp()) // DAY + 1) * DAY


def day_prices(session: Session, settings: Settings, day_start: int) -> tuple[list[int], str]:
    """Price per kWh of each quarter hour of the day and where it came from."""
    since = day_start - settings.vpp_price_lookback_days * DAY
    slot = (col(Trade.delivery_start) % DAY) // SLOT_SECONDS
    rows = session.exec(
        select(
            slot, func.sum(col(Trade.price) * col(Trade.quantity_wh)), func.sum(Trade.quantity_wh)
        )
        .where(
            Trade.product == "energy",
            col(Trade.delivery_start) >= since,
            col(Trade.delivery_start) < day_start,
            col(Trade.quantity_wh) > 0,
        )
        .group_by(slot)
    ).all()
    if not rows:
        return [settings.vpp_default_price_per_kwh] * SLOTS, "default"
    by_slot = {int(s or 0): float(value) / float(volume) for s, value, volume in rows}
    overall = sum(float(v) for _, v, _ in rows) / sum(float(q) for *_, q in rows)
    return [round(by_slot.get(i, overall)) for i in range(SLOTS)], "market"


def covering_forecast(
    session: Session, vpp: Vpp, day_start: int, kind: TargetKind
) -> StoredForecast | None:
    """The newest stored `kind` forecast of the VPP covering the whole day."""
    candidates = session.exec(
        select(StoredForecast)
        .where(
            StoredForecast.target_kind == kind.value,
            StoredForecast.target_id == str(vpp.id),
            col(StoredForecast.start) <= day_start,
        )
        .order_by(col(StoredForecast.created_at).desc())
        .limit(20)
    ).all()
    for stored in candidates:
        if stored.start + len(stored.values) * stored.slot_seconds >= day_start + DAY:
            return stored
    return None


def day_forecast(
    session: Session,
    settings: Settings,
    vpp: Vpp,
    aggregator: Account,
    day_start: int,
    provider: WeatherProvider | None,
    kind: TargetKind,
) -> tuple[list[int], str | None, str]:
    """Wh per slot (≥ 0) of the VPP's `kind` forecast for the day: its PV members' output
    (`vppGeneration`) or their homes' demand (`vppDemand`); the forecast id and what happened."""
    stored = covering_forecast(session, vpp, day_start, kind)
    note = "stored"
    if stored is None:
        request = ForecastRequest(
            target=kind, targetId=str(vpp.id), start=datetime.fromtimestamp(day_start, UTC)
        )
        try:
            made = run_forecast(session, settings, aggregator, request, provider=provider)
        except (InsufficientHistory, WeatherUnavailable) as exc:
            return [0] * SLOTS, None, exc.code
        stored, note = session.get(StoredForecast, made.forecastId), "made"
        if stored is None:  # flushed by run_forecast: unreachable
            return [0] * SLOTS, None, "missing"
    offset = (day_start - stored.start) // stored.slot_seconds
    values = [max(int(v), 0) for v in stored.values[offset : offset + SLOTS]]
    return values, str(stored.id), note


def optimize_day(
    session: Session,
    settings: Settings,
    vpp: Vpp,
    day_start: int,
    *,
    provider: WeatherProvider | None = None,
) -> VppSchedule | None:
    """Plan and queue the day for one VPP; None when the day was planned already. Commits."""
    if session.get(VppDailySchedule, (vpp.id, day_start)) is not None:
        return None
    aggregator = session.get(Account, vpp.aggregator_id)
    if aggregator is None:  # the foreign key makes this unreachable
        return None
    prices, price_source = day_prices(session, settings, day_start)
    pv, forecast_id, forecast_note = day_forecast(
        session, settings, vpp, aggregator, day_start, provider, TargetKind.VPP_GENERATION
    )
    demand, demand_id, demand_note = day_forecast(
        session, settings, vpp, aggregator, day_start, provider, TargetKind.VPP_DEMAND
    )
    request = OptimizeRequest(
        start=datetime.fromtimestamp(day_start, UTC),
        buyPrice=prices,
        sellPrice=prices,
        pvWh=pv,
        demandWh=demand,
    )
    result = optimize_vpp(session, settings, aggregator, vpp.id, request)
    schedule = session.get(VppSchedule, result.scheduleId)
    if schedule is None:  # flushed by optimize_vpp: unreachable
        return None
    schedule.inputs = {
        **schedule.inputs,
        "daily": {
            "day": day_start,
            "prices": price_source,
            "priceLookbackDays": settings.vpp_price_lookback_days,
            "forecastId": forecast_id,
            "forecast": forecast_note,
            "demandForecastId": demand_id,
            "demandForecast": demand_note,
        },
    }
    session.add(schedule)
    session.add(VppDailySchedule(vpp_id=vpp.id, day_start=day_start, schedule_id=schedule.id))
    try:
        session.flush()
    except IntegrityError:  # another run planned this day meanwhile: keep theirs
        session.rollback()
        return None
    downlink.queue_schedule(session, settings, schedule)
    session.commit()
    return schedule


@dataclass
class DailyReport:
    day_start: int
    planned: list[str] = field(default_factory=list)  # VPP ids given a schedule now
    already: list[str] = field(default_factory=list)  # planned by an earlier run
    failed: dict[str, str] = field(default_factory=dict)  # VPP id → why


def optimize_all(
    session: Session,
    settings: Settings,
    *,
    now: datetime | None = None,
    provider: WeatherProvider | None = None,
) -> DailyReport:
    """Plan the next UTC day of every active VPP that has members; the day after `now`, by
    default the configured clock's (the chain's simulated day under `GRIDLEDGER_CLOCK=chain`)."""
    report = DailyReport(day_start=next_day(now or clock.utc_now(settings)))
    vpps = session.exec(
        select(Vpp).where(col(Vpp.dissolved_at).is_(None)).order_by(col(Vpp.created_at))
    ).all()
    ids: list[uuid.UUID] = [v.id for v in vpps if members(session, v)]
    for vpp_id in ids:
        vpp = session.get(Vpp, vpp_id)
        if vpp is None:
            continue
        try:
            schedule = optimize_day(session, settings, vpp, report.day_start, provider=provider)
        except GridLedgerError as exc:  # one VPP's failure is reported, the others still planned
            session.rollback()
            report.failed[str(vpp_id)] = f"{exc.code}: {exc.detail}"[:200]
            continue
        (report.planned if schedule is not None else report.already).append(str(vpp_id))
    return report

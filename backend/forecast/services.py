"""`POST /v1/energy/forecast`: read the target's stored history (settings' lookback, ≥ 168 h),
ask the weather provider for the same span plus the horizon, backtest and forecast
(backend/forecast/model.py), and store the result with everything it was made from: the
history as read (gaps interpolated), the weather per slot, the place and the settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlmodel import Session, col, select

from backend.accounts.models import Account
from backend.chain import clock
from backend.core.config import Settings
from backend.forecast import history, model
from backend.forecast.errors import InsufficientHistory, WeatherUnavailable
from backend.forecast.models import StoredForecast, TargetKind
from backend.forecast.schemas import (
    Accuracy,
    Backtest,
    ForecastPoint,
    ForecastRequest,
    ForecastResult,
    WeatherUsed,
)
from backend.forecast.weather import WeatherProvider, provider_from_settings, slot_weather
from backend.vpp.models import Vpp
from backend.vpp.optimize import slot_start

SLOT = model.SLOT_SECONDS


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _accuracy(a: model.Accuracy) -> Accuracy:
    return Accuracy(maeWh=round(a.mae, 1), mape=None if a.mape is None else round(a.mape, 4))


def run_forecast(
    session: Session,
    settings: Settings,
    account: Account,
    request: ForecastRequest,
    *,
    now: datetime | None = None,
    provider: WeatherProvider | None = None,
) -> ForecastResult:
    """Forecast and store (the caller commits)."""
    start = slot_start(request.start, settings, now)
    target = history.resolve(session, account, request.target, request.targetId)
    lookback = settings.forecast_lookback_hours * 3600 // SLOT
    raw = history.load(
        session,
        target,
        start=start - lookback * SLOT,
        slots=lookback,
        verified_only=request.verifiedOnly,
    )
    skipped, series = history.usable(raw)
    history_start = start - (lookback - skipped) * SLOT
    horizon = request.horizon * 3600 // SLOT
    lat = settings.forecast_default_lat if target.lat is None else target.lat
    lng = settings.forecast_default_lng if target.lng is None else target.lng
    weather_source = provider or provider_from_settings(
        settings.forecast_weather_provider, settings.forecast_weather_seed
    )
    weather = slot_weather(
        weather_source, lat=lat, lng=lng, start=history_start, slots=len(series) + horizon
    )
    result = model.forecast(series, history_start, weather, horizon)
    values = [int(v) for v in np.rint(result.values)]
    stored = StoredForecast(
        target_kind=target.kind.value,
        target_id=target.id,
        requested_by=account.id,
        start=start,
        slot_seconds=SLOT,
        horizon=horizon,
        model=result.model,
        mae_wh=result.backtest.model.mae,
        mape=result.backtest.model.mape,
        naive_mae_wh=result.backtest.naive.mae,
        naive_mape=result.backtest.naive.mape,
        values=values,
        inputs={
            "quantity": target.quantity.value,
            "meters": list(target.meter_ids),
            "resources": [str(r) for r in target.resource_ids],
            "verifiedOnly": request.verifiedOnly,
            "historyFrom": history_start,
            "history": [int(v) for v in np.rint(series)],
            "missingSlots": int(np.isnan(raw[skipped:]).sum()),
            "weather": {
                "provider": weather_source.name,
                "seed": settings.forecast_weather_seed,
                "latitude": lat,
                "longitude": lng,
                "perSlot": {k: np.round(v, 1).tolist() for k, v in weather.items()},
            },
            "lookbackHours": settings.forecast_lookback_hours,
        },
    )
    session.add(stored)
    session.flush()
    return ForecastResult(
        forecastId=stored.id,
        target=target.kind,
        targetId=target.id,
        quantity=target.quantity,
        horizon=request.horizon,
        resolution=request.resolution,
        model=result.model,
        values=[
            ForecastPoint(timestamp=_utc(start + i * SLOT), value=v) for i, v in enumerate(values)
        ],
        backtest=Backtest(
            heldOutFrom=_utc(start - model.SLOTS_PER_DAY * SLOT),
            model=_accuracy(result.backtest.model),
            naive=_accuracy(result.backtest.naive),
        ),
        weather=WeatherUsed(provider=weather_source.name, latitude=lat, longitude=lng),
        historyFrom=_utc(history_start),
        historySlots=len(series),
        createdAt=stored.created_at,
    )


@dataclass(frozen=True)
class RefreshReport:
    forecast: list[str]  # VPP ids forecast (a stored forecast each)
    skipped: dict[str, str]  # VPP id → why (too little history, no weather, ...)


def refresh_vpp_forecasts(
    session: Session,
    settings: Settings,
    *,
    now: datetime | None = None,
    provider: WeatherProvider | None = None,
) -> RefreshReport:
    """The beat's daily refit: forecast the next 24 h of every VPP that has members, on
    behalf of its aggregator, committing each. A VPP whose history is too short is skipped and
    named; nothing else is swallowed. `now` defaults to the configured clock (the chain's
    simulated time under `GRIDLEDGER_CLOCK=chain`)."""
    now = now or clock.utc_now(settings)
    done: list[str] = []
    skipped: dict[str, str] = {}
    vpps = session.exec(select(Vpp).where(col(Vpp.dissolved_at).is_(None))).all()
    for vpp in vpps:
        aggregator = session.get(Account, vpp.aggregator_id)
        if aggregator is None:  # the foreign key makes this unreachable
            continue
        request = ForecastRequest(target=TargetKind.VPP, targetId=str(vpp.id))
        try:
            run_forecast(session, settings, aggregator, request, now=now, provider=provider)
        except (InsufficientHistory, WeatherUnavailable) as exc:  # raised before anything is added
            skipped[str(vpp.id)] = exc.code
            continue
        session.commit()
        done.append(str(vpp.id))
    return RefreshReport(forecast=done, skipped=skipped)

"""`POST /v1/energy/forecast` (WIA-ENE-014): 24 h ahead at 15-minute resolution for a meter,
a resource, a VPP or a grid area, from its stored history and the weather."""

from __future__ import annotations

from fastapi import APIRouter

from backend.api.deps import Reader, SessionDep, SettingsDep
from backend.api.problem_docs import raises
from backend.core.errors import InvalidInput
from backend.forecast import services
from backend.forecast.errors import (
    ForecastAccessDenied,
    ForecastTargetNotFound,
    InsufficientHistory,
    WeatherUnavailable,
)
from backend.forecast.schemas import ForecastRequest, ForecastResult

router = APIRouter(prefix="/energy", tags=["forecast"])


@router.post(
    "/forecast",
    response_model=ForecastResult,
    status_code=201,
    responses=raises(
        ForecastTargetNotFound,
        ForecastAccessDenied,
        InsufficientHistory,
        WeatherUnavailable,
        InvalidInput,
    ),
)
def forecast(
    data: ForecastRequest, session: SessionDep, settings: SettingsDep, account: Reader
) -> ForecastResult:
    """Energy per 15-minute slot (integer Wh, slot starts in UTC) for the next `horizon` hours
    of a meter (net import, from its readings), a resource or VPP (output, from telemetry;
    `vppGeneration`: its PV members only), a grid area (net import of its resources' meters)
    or a VPP's demand (`vppDemand`: its members' meters' net import plus the members'
    output). Needs ≥ 168 h of stored history. The
    answer names the model that won the backtest on the last stored day and both its and the
    seasonal-naive baseline's MAE/MAPE; the forecast is stored with its inputs."""
    result = services.run_forecast(session, settings, account, data)
    session.commit()
    return result

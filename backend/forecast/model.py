"""The forecaster: a seasonal profile plus ridge regression on weather features (numpy only),
checked against a seasonal-naive baseline on the last day of the history.

Why this model: it fits in milliseconds per series with what we already ship (numpy; SciPy
is a dependency anyway), handles weather as plain regressors, and beat seasonal-naive on the
backtests in tests/backend/forecast. Row `t` (a 15-minute slot) is explained by
    daily Fourier terms (4 harmonics) + weekend flag
    + the value of the same slot yesterday (and last week when the history holds two weeks)
    + temperature, heating/cooling degrees, cloud cover, irradiance at `t` and 24 h earlier,
so "like yesterday, corrected for the weather change" is one of the fits it can find.

Guarantees: `forecast()` backtests both the model and the baseline on the held-out last 24 h
(fitted on what precedes it), then serves the one with the lower MAE, refitted on the whole
history. Values are Wh per slot as floats; callers round.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.forecast.errors import InsufficientHistory

SLOT_SECONDS = 900
SLOTS_PER_DAY = 96
SLOTS_PER_WEEK = 7 * SLOTS_PER_DAY
MIN_HISTORY_SLOTS = SLOTS_PER_WEEK  # 168 h
HARMONICS = 4
RIDGE_ALPHA = 1.0
MODEL_NAME = "ridge-seasonal-weather"
NAIVE_NAME = "seasonal-naive-24h"

WEATHER_KEYS = ("temperature_c", "cloud_cover_pct", "irradiance_w_m2")


@dataclass(frozen=True)
class Accuracy:
    """Errors on a held-out day: MAE in Wh, MAPE as a fraction over slots whose actual value is
    not zero (None when every actual is zero, e.g. PV at night only)."""

    mae: float
    mape: float | None


@dataclass(frozen=True)
class Backtest:
    model: Accuracy
    naive: Accuracy


@dataclass(frozen=True)
class Forecast:
    values: np.ndarray  # Wh per slot, len == horizon
    model: str  # MODEL_NAME or NAIVE_NAME: whichever won the backtest
    backtest: Backtest


def accuracy(predicted: np.ndarray, actual: np.ndarray) -> Accuracy:
    errors = np.abs(predicted - actual)
    nonzero = actual != 0
    mape = float(np.mean(errors[nonzero] / np.abs(actual[nonzero]))) if nonzero.any() else None
    return Accuracy(mae=float(errors.mean()), mape=mape)


def seasonal_naive(history: np.ndarray, horizon: int) -> np.ndarray:
    """The same slot yesterday (repeated for horizons past a day)."""
    day = history[-SLOTS_PER_DAY:]
    return np.resize(day, horizon).astype(float)


def _weather_columns(weather: dict[str, np.ndarray], rows: np.ndarray) -> list[np.ndarray]:
    temperature = weather["temperature_c"][rows]
    return [
        temperature,
        np.maximum(16.0 - temperature, 0.0),  # heating degrees
        np.maximum(temperature - 22.0, 0.0),  # cooling degrees
        weather["cloud_cover_pct"][rows] / 100.0,
        weather["irradiance_w_m2"][rows] / 1_000.0,
    ]


def _design(
    series: np.ndarray,
    timestamps: np.ndarray,
    weather: dict[str, np.ndarray],
    rows: np.ndarray,
    use_week: bool,
) -> np.ndarray:
    """Feature rows for slot indices `rows` (lags index into `series`, weather into the full
    history+horizon arrays)."""
    day_angle = 2 * np.pi * (timestamps[rows] % 86_400) / 86_400
    columns = [np.ones(len(rows))]
    for k in range(1, HARMONICS + 1):
        columns += [np.sin(k * day_angle), np.cos(k * day_angle)]
    weekday = (timestamps[rows] // 86_400 + 3) % 7  # 1970-01-01 was a Thursday (3)
    columns.append((weekday >= 5).astype(float))
    columns.append(series[rows - SLOTS_PER_DAY])
    if use_week:
        columns.append(series[rows - SLOTS_PER_WEEK])
    columns += _weather_columns(weather, rows)
    columns += _weather_columns(weather, rows - SLOTS_PER_DAY)
    return np.column_stack(columns)


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ridge on standardised columns (the intercept column is left unscaled and unpenalised)."""
    mean, scale = x.mean(axis=0), x.std(axis=0)
    mean[0], scale[0] = 0.0, 1.0
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    penalty = alpha * np.eye(z.shape[1])
    penalty[0, 0] = 0.0
    coef = np.linalg.solve(z.T @ z + penalty, z.T @ y)
    return coef, mean, scale


def ridge_forecast(
    history: np.ndarray,
    timestamps: np.ndarray,
    weather: dict[str, np.ndarray],
    horizon: int,
) -> np.ndarray:
    """Fit on `history` and predict the `horizon` slots after it. `timestamps` and `weather`
    cover history + horizon (the weather over the horizon is the provider's forecast)."""
    n = len(history)
    if horizon > SLOTS_PER_DAY:
        raise InsufficientHistory(f"horizon {horizon} slots exceeds one day of lags")
    use_week = n >= SLOTS_PER_WEEK + 4 * SLOTS_PER_DAY  # enough rows with a week's lag
    first = SLOTS_PER_WEEK if use_week else SLOTS_PER_DAY
    extended = np.concatenate([history, np.zeros(horizon)])  # lags never reach the zeros
    train = np.arange(first, n)
    coef, mean, scale = _ridge(
        _design(extended, timestamps, weather, train, use_week), history[first:], RIDGE_ALPHA
    )
    future = np.arange(n, n + horizon)
    x = _design(extended, timestamps, weather, future, use_week)
    return np.asarray(((x - mean) / scale) @ coef)


def forecast(
    history: np.ndarray,
    start: int,
    weather: dict[str, np.ndarray],
    horizon: int = SLOTS_PER_DAY,
) -> Forecast:
    """Forecast the `horizon` slots after `history` (slot 0 of history starts at unix `start`).
    `weather` holds each of WEATHER_KEYS for every slot of history + horizon."""
    history = np.asarray(history, dtype=float)
    n = len(history)
    if n < MIN_HISTORY_SLOTS:
        raise InsufficientHistory(
            f"{n} slots of history; at least {MIN_HISTORY_SLOTS} (168 h) are needed",
            have=n,
            need=MIN_HISTORY_SLOTS,
        )
    timestamps = start + SLOT_SECONDS * np.arange(n + horizon, dtype=np.int64)
    held_out = history[-SLOTS_PER_DAY:]
    fitted = history[:-SLOTS_PER_DAY]
    backtest = Backtest(
        model=accuracy(ridge_forecast(fitted, timestamps, weather, SLOTS_PER_DAY), held_out),
        naive=accuracy(seasonal_naive(fitted, SLOTS_PER_DAY), held_out),
    )
    if backtest.model.mae <= backtest.naive.mae:
        return Forecast(ridge_forecast(history, timestamps, weather, horizon), MODEL_NAME, backtest)
    return Forecast(seasonal_naive(history, horizon), NAIVE_NAME, backtest)

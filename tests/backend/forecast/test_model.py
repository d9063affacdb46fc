"""Backtests on generated history with a known pattern (backend/forecast/synthetic.py): the
ridge model must beat seasonal-naive on the day after the history, for homes (daily profile,
heating with the cold, noise) and PV (irradiance), and fall back to naive when it cannot."""

from __future__ import annotations

import numpy as np
import pytest

from backend.forecast.errors import InsufficientHistory
from backend.forecast.model import (
    MODEL_NAME,
    NAIVE_NAME,
    SLOTS_PER_DAY,
    accuracy,
    forecast,
    seasonal_naive,
)
from backend.forecast.synthetic import household_wh, pv_wh
from backend.forecast.weather import SimulatedWeather, slot_weather

SEOUL = {"lat": 37.5665, "lng": 126.978}
START = 1_767_225_600  # 2026-01-01T00:00Z


def generated(kind: str, days: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """`days` of history plus the day after it, and the weather over both."""
    slots = (days + 1) * SLOTS_PER_DAY
    weather = slot_weather(SimulatedWeather(seed), **SEOUL, start=START, slots=slots)
    rng = np.random.default_rng(seed)
    if kind == "home":
        return household_wh(START, slots, weather, rng), weather
    return pv_wh(slots, weather, rng), weather


@pytest.mark.parametrize("kind", ["home", "pv"])
@pytest.mark.parametrize("days", [8, 28])
def test_the_model_beats_seasonal_naive_on_the_next_day(kind, days):
    model_error, naive_error = 0.0, 0.0
    for seed in range(6):
        series, weather = generated(kind, days, seed)
        history, actual = series[:-SLOTS_PER_DAY], series[-SLOTS_PER_DAY:]
        result = forecast(history, START, weather)
        assert len(result.values) == SLOTS_PER_DAY
        assert result.backtest.naive.mae > 0 and result.backtest.model.mape is not None
        model_error += accuracy(result.values, actual).mae
        naive_error += accuracy(seasonal_naive(history, SLOTS_PER_DAY), actual).mae
    assert model_error / naive_error < 0.9


def test_the_backtest_scores_the_held_out_last_day():
    series, weather = generated("home", 14, seed=11)
    history = series[:-SLOTS_PER_DAY]
    result = forecast(history, START, weather)
    assert result.model == MODEL_NAME
    naive = accuracy(history[-2 * SLOTS_PER_DAY : -SLOTS_PER_DAY], history[-SLOTS_PER_DAY:])
    assert result.backtest.naive.mae == pytest.approx(naive.mae)
    assert result.backtest.model.mae < result.backtest.naive.mae


def test_a_day_that_repeats_exactly_is_served_by_the_baseline():
    day = np.concatenate([np.zeros(30), np.linspace(0, 900, 36), np.zeros(30)])
    history = np.tile(day, 8)
    _, weather = generated("pv", 8, seed=2)
    result = forecast(history, START, weather)
    assert result.model == NAIVE_NAME and result.backtest.naive.mae == 0
    np.testing.assert_array_equal(result.values, day)


def test_less_than_168_hours_is_refused():
    series, weather = generated("home", 8, seed=1)
    with pytest.raises(InsufficientHistory) as refused:
        forecast(series[: 7 * SLOTS_PER_DAY - 1], START, weather)
    assert refused.value.extensions["need"] == 7 * SLOTS_PER_DAY

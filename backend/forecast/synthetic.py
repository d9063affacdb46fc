"""Generated history with a known pattern, for backtests, the benchmark and the demo: homes
whose consumption follows a daily profile (morning and evening peaks, more at weekends),
heating that grows with the cold of the simulated weather, and noise; PV whose output follows
the simulated irradiance. Deterministic per seed."""

from __future__ import annotations

import numpy as np

from backend.forecast.model import SLOT_SECONDS


def slot_times(start: int, slots: int) -> np.ndarray:
    return start + SLOT_SECONDS * np.arange(slots, dtype=np.int64)


def household_wh(
    start: int,
    slots: int,
    weather: dict[str, np.ndarray],
    rng: np.random.Generator,
    scale: float = 1.0,
) -> np.ndarray:
    """Net import (Wh per 15 min) of a home: base + peaks + heating + 10 % noise."""
    hours = (slot_times(start, slots) % 86_400) / 3600
    weekday = (slot_times(start, slots) // 86_400 + 3) % 7
    morning = np.exp(-(((hours - 7.5) / 1.5) ** 2))
    evening = np.exp(-(((hours - 19) / 2.5) ** 2))
    profile = 60 + 120 * morning + 220 * evening + 30 * (weekday >= 5)
    heating = 18 * np.maximum(16 - weather["temperature_c"], 0)
    clean = scale * (profile + heating)
    return np.maximum(clean * (1 + 0.1 * rng.standard_normal(slots)), 0)


def pv_wh(
    slots: int,
    weather: dict[str, np.ndarray],
    rng: np.random.Generator,
    capacity_w: float = 5_000,
) -> np.ndarray:
    """Energy fed in per 15 min by a PV array: irradiance × capacity × 0.85 ± 5 %."""
    power = capacity_w * 0.85 * weather["irradiance_w_m2"] / 1_000
    return np.maximum(power * 0.25 * (1 + 0.05 * rng.standard_normal(slots)), 0)

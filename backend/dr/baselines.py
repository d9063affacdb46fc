"""Customer baseline load (CBL): what a site would have drawn had there been no DR event.

Pure functions over one meter's 15-minute interval energy (integer Wh, one list of 96 values
per calendar day, index 0 = 00:00-00:15 UTC). Nothing here reads the database: the caller loads
verified readings (backend/dr/readings.py) and hands in the days.

Methods (sources):

- **High X of Y similar days** (`high_x_of_y`). Of the Y most recent eligible days of the same
  day type as the event day (weekday vs weekend/holiday), take the X with the highest load over
  the event window and average them interval by interval. Eligible: not an event day, not a
  holiday, complete data. The parameterisations in use are
  PJM's economic-program CBL "high 4 of 5" weekdays (PJM Manual 11, Energy & Ancillary
  Services Market Operations, Customer Baseline Load), NYISO's "high 5 of 10" weekday CBL
  (NYISO Emergency Demand Response Program / SCR manuals) and CAISO's "10 in 10" (X = Y = 10,
  CAISO Business Practice Manual for Demand Response: the 10 most recent similar non-event
  days averaged). NAESB WEQ-015
  (Measurement and Verification of Wholesale Electricity Demand Response) classifies all of
  these as "Baseline Type-I": an interval-metered baseline from historical load on similar days.
- **Same-day (morning / day-of) adjustment** (`adjust`). The baseline is shifted (additive) or
  scaled (multiplicative) so that it matches the actual load in an adjustment window shortly
  before the event: PJM's symmetric additive adjustment and CAISO's day-of adjustment both use
  the three hours starting four hours before the event (the hour just before it is left out,
  since notified customers may already be reducing). The adjustment is capped (+/-20 % of the
  baseline here; ISOs have used caps between 20 % and 40 %): load raised before an event cannot
  lift the baseline by more than `cap` of itself.
- **Weather regression** (`weather_regression`). Per interval of the day, ordinary least
  squares of load on cooling- and heating-degree features (max(T - base, 0),
  max(base - T, 0)) over past similar non-event days, evaluated at the event day's
  temperatures. NAESB WEQ-015 allows Type-I baselines built from the site's interval data
  together with weather variables; ISOs accept such regression CBLs as alternatives to day
  matching for weather-sensitive loads (e.g. PJM Manual 11's alternative CBL methods).

Rounding: averaging and adjustment are exact (integer numerators over integer denominators)
and rounded once per interval to integer Wh, half toward +infinity (`round_ratio`); the
adjusted baseline starts from the rounded unadjusted one. The
regression is floating point (numpy least squares) and rounded the same way.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from fractions import Fraction

import numpy as np

from backend.dr.errors import BaselineInputInvalid, NotEnoughBaselineDays

INTERVALS_PER_DAY = 96  # 15-minute intervals in a UTC day
INTERVAL_SECONDS = 900

DayLoads = Mapping[date, Sequence[int]]


class DayType(StrEnum):
    WEEKDAY = "weekday"
    WEEKEND = "weekend"  # Saturday, Sunday and holidays


class AdjustmentKind(StrEnum):
    NONE = "none"
    ADDITIVE = "additive"  # baseline + (actual - baseline) over the adjustment window
    MULTIPLICATIVE = "multiplicative"  # baseline * actual / baseline over the window


@dataclass(frozen=True)
class Window:
    """Intervals [start, end) of a day (0..96)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end <= INTERVALS_PER_DAY:
            raise BaselineInputInvalid(f"window [{self.start}, {self.end}) is not within 0..96")


@dataclass(frozen=True)
class Adjustment:
    """Same-day adjustment: the window is `length` intervals ending `gap` intervals before the
    event start (default 12 and 4: the three hours starting four hours before the event)."""

    kind: AdjustmentKind = AdjustmentKind.ADDITIVE
    length: int = 12
    gap: int = 4
    cap: Fraction = Fraction(1, 5)  # +/-20 % of the unadjusted baseline over the window

    def window(self, event: Window) -> Window | None:
        """None for an event in the day's first hours, whose window would begin before the
        day: there is no same-day load to adjust from, and the unadjusted baseline stands."""
        end = event.start - self.gap
        return Window(end - self.length, end) if end - self.length >= 0 else None


@dataclass(frozen=True)
class Baseline:
    """A baseline for one event day: 96 integer Wh values, the days it was built from, and the
    adjustment applied (Wh added per interval, or the ratio applied; None without one)."""

    wh: list[int]
    days: list[date]
    additive_wh: Fraction | None = None
    ratio: Fraction | None = None

    def over(self, window: Window) -> list[int]:
        return self.wh[window.start : window.end]


def round_wh(value: Fraction | float) -> int:
    """Round to integer Wh, half toward +infinity (2.5 -> 3, -2.5 -> -2)."""
    if isinstance(value, Fraction):
        return round_ratio(value.numerator, value.denominator)
    return math.floor(value + 0.5)


def round_ratio(numerator: int, denominator: int) -> int:
    """`round_wh(numerator / denominator)` in integers (denominator > 0): floor(n/d + 1/2)."""
    return (2 * numerator + denominator) // (2 * denominator)


def day_type(day: date, holidays: Collection[date] = ()) -> DayType:
    """Weekends and holidays are one day type: NYISO, PJM and CAISO all treat holidays like
    weekend days for baseline selection."""
    if day in holidays or day.weekday() >= 5:
        return DayType.WEEKEND
    return DayType.WEEKDAY


def _complete(loads: Sequence[int] | None) -> bool:
    return loads is not None and len(loads) == INTERVALS_PER_DAY


def similar_days(
    history: DayLoads,
    *,
    event_day: date,
    y: int,
    excluded: Collection[date] = (),
    holidays: Collection[date] = (),
    lookback_days: int = 45,
) -> list[date]:
    """The `y` most recent days before `event_day` of its day type, skipping excluded (event)
    days, holidays (when the event day is a weekday) and days without 96 intervals; at most
    `lookback_days` back (PJM's 45-day limit). Newest first."""
    wanted = day_type(event_day, holidays)
    found: list[date] = []
    for back in range(1, lookback_days + 1):
        day = event_day - timedelta(days=back)
        if day in excluded or day_type(day, holidays) != wanted:
            continue
        if not _complete(history.get(day)):
            continue
        found.append(day)
        if len(found) == y:
            break
    return found


def high_x_of_y(
    history: DayLoads,
    *,
    event_day: date,
    event_window: Window,
    x: int,
    y: int,
    excluded: Collection[date] = (),
    holidays: Collection[date] = (),
    lookback_days: int = 45,
) -> Baseline:
    """Unadjusted high-X-of-Y baseline (see the module docstring for sources).

    Of the `y` similar days (`similar_days`) the `x` with the highest total load over
    `event_window` are averaged interval by interval (ties: the more recent day wins).
    Fewer than `y` eligible days raises `NotEnoughBaselineDays`: a short history does not
    silently become a smaller sample.
    """
    if not 1 <= x <= y:
        raise BaselineInputInvalid(f"need 1 <= x <= y, got x={x}, y={y}")
    days = similar_days(
        history,
        event_day=event_day,
        y=y,
        excluded=excluded,
        holidays=holidays,
        lookback_days=lookback_days,
    )
    if len(days) < y:
        raise NotEnoughBaselineDays(
            f"{len(days)} eligible days before {event_day}, need {y}", found=len(days), needed=y
        )
    # newest first, and sorted() is stable: equal window loads keep the more recent day first
    ranked = sorted(days, key=lambda d: -sum(history[d][event_window.start : event_window.end]))
    chosen = sorted(ranked[:x], reverse=True)
    profiles = [history[d] for d in chosen]
    wh = [round_ratio(sum(interval), x) for interval in zip(*profiles, strict=True)]
    return Baseline(wh=wh, days=chosen)


def adjust(
    baseline: Baseline,
    *,
    actual: Sequence[int | None],
    event_window: Window,
    adjustment: Adjustment,
) -> Baseline:
    """Apply a capped same-day adjustment from the event day's own load before the event.

    Additive: every interval gets + (sum(actual) - sum(baseline)) / n over the adjustment
    window, the shift capped at `cap` x the window's mean baseline. Multiplicative: every
    interval is multiplied by sum(actual) / sum(baseline), clamped to [1 - cap, 1 + cap]
    (ratio 1 when the window's baseline is zero). Missing actual intervals in the window, or
    a window before the event day's start (an event in its first hours): no adjustment (the
    caller's data cannot support one; the unadjusted baseline stands).
    """
    if adjustment.kind == AdjustmentKind.NONE:
        return baseline
    window = adjustment.window(event_window)
    if window is None:
        return baseline
    observed = actual[window.start : window.end]
    if len(observed) != window.end - window.start or any(v is None for v in observed):
        return baseline
    n = window.end - window.start
    actual_sum = sum(v for v in observed if v is not None)
    base_sum = sum(baseline.wh[window.start : window.end])
    if adjustment.kind == AdjustmentKind.ADDITIVE:
        shift = Fraction(actual_sum - base_sum, n)
        limit = adjustment.cap * Fraction(abs(base_sum), n)
        shift = max(-limit, min(limit, shift))
        p, q = shift.numerator, shift.denominator
        wh = [round_ratio(v * q + p, q) for v in baseline.wh]
        return Baseline(wh=wh, days=baseline.days, additive_wh=shift)
    ratio = Fraction(1) if base_sum == 0 else Fraction(actual_sum, base_sum)
    ratio = max(1 - adjustment.cap, min(1 + adjustment.cap, ratio))
    p, q = ratio.numerator, ratio.denominator
    wh = [round_ratio(v * p, q) for v in baseline.wh]
    return Baseline(wh=wh, days=baseline.days, ratio=ratio)


def high_x_of_y_adjusted(
    history: DayLoads,
    *,
    event_day: date,
    event_window: Window,
    x: int,
    y: int,
    adjustment: Adjustment,
    excluded: Collection[date] = (),
    holidays: Collection[date] = (),
    lookback_days: int = 45,
) -> Baseline:
    """`high_x_of_y` followed by `adjust` with the event day's own (partial) load.

    The unadjusted baseline is rounded per interval first, then adjusted from those rounded
    values; the adjustment itself is exact until the final rounding."""
    raw = high_x_of_y(
        history,
        event_day=event_day,
        event_window=event_window,
        x=x,
        y=y,
        excluded=excluded,
        holidays=holidays,
        lookback_days=lookback_days,
    )
    return adjust(
        raw,
        actual=history.get(event_day, ()),
        event_window=event_window,
        adjustment=adjustment,
    )


def degree_features(temperature_c: float, base_c: float) -> tuple[float, float]:
    """(cooling degrees, heating degrees) of one interval relative to `base_c`."""
    return max(temperature_c - base_c, 0.0), max(base_c - temperature_c, 0.0)


def weather_regression(
    history: DayLoads,
    temperatures: Mapping[date, Sequence[float]],
    *,
    event_day: date,
    min_days: int = 10,
    excluded: Collection[date] = (),
    holidays: Collection[date] = (),
    lookback_days: int = 60,
    base_c: float = 18.0,
) -> Baseline:
    """Weather-regression baseline: per interval k, least squares over past similar days of
    load[d][k] ~ a_k + b_k * CDD[d][k] + c_k * HDD[d][k], evaluated at the event day's
    temperatures (`temperatures[event_day]`, 96 values in degrees C).

    Days without 96 loads or 96 temperatures are skipped; fewer than `min_days` usable days
    raises `NotEnoughBaselineDays`. A feature that never varies (no heating days in summer)
    gets a zero coefficient (numpy's minimum-norm solution), so the fit degrades to the
    one-feature model rather than failing.
    """
    event_temps = temperatures.get(event_day)
    if event_temps is None or len(event_temps) != INTERVALS_PER_DAY:
        raise BaselineInputInvalid(f"need 96 temperatures for the event day {event_day}")
    usable = {d: v for d, v in history.items() if len(temperatures.get(d, ())) == INTERVALS_PER_DAY}
    days = similar_days(
        usable,
        event_day=event_day,
        y=lookback_days,
        excluded=excluded,
        holidays=holidays,
        lookback_days=lookback_days,
    )
    if len(days) < min_days:
        raise NotEnoughBaselineDays(
            f"{len(days)} usable days before {event_day}, need {min_days}",
            found=len(days),
            needed=min_days,
        )
    loads = np.array([history[d] for d in days], dtype=float)  # days x 96
    temps = np.array([temperatures[d] for d in days], dtype=float)
    cdd = np.maximum(temps - base_c, 0.0)
    hdd = np.maximum(base_c - temps, 0.0)
    target = np.array(event_temps, dtype=float)
    event_x = np.stack(
        [
            np.ones(INTERVALS_PER_DAY),
            np.maximum(target - base_c, 0.0),
            np.maximum(base_c - target, 0.0),
        ],
        axis=1,
    )
    wh: list[int] = []
    for k in range(INTERVALS_PER_DAY):
        design = np.stack([np.ones(len(days)), cdd[:, k], hdd[:, k]], axis=1)
        coef, *_ = np.linalg.lstsq(design, loads[:, k], rcond=None)
        wh.append(round_wh(float(event_x[k] @ coef)))
    return Baseline(wh=wh, days=sorted(days, reverse=True))

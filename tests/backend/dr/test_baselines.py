"""Customer baseline methods on small hand-computed examples, plus properties.

Calendar used by the examples (2026): Mon 30 Nov is the event day; Thu 26 Nov is a holiday
(Thanksgiving), Wed 25 Nov an earlier event day, Sat 28 / Sun 29 weekend days. The weekday
similar days, newest first, are therefore 27, 24, 23, 20, 19, 18, 17, 16, 13, 12 Nov.
"""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.dr.baselines import (
    INTERVALS_PER_DAY,
    Adjustment,
    AdjustmentKind,
    Baseline,
    Window,
    adjust,
    high_x_of_y,
    high_x_of_y_adjusted,
    round_ratio,
    round_wh,
    similar_days,
    weather_regression,
)
from backend.dr.errors import BaselineInputInvalid, NotEnoughBaselineDays

EVENT_DAY = date(2026, 11, 30)
HOLIDAY = date(2026, 11, 26)
PAST_EVENT = date(2026, 11, 25)
WINDOW = Window(64, 72)  # 16:00-18:00 UTC


def flat(value: int) -> list[int]:
    return [value] * INTERVALS_PER_DAY


def with_window(outside: int, inside: int) -> list[int]:
    day = flat(outside)
    day[WINDOW.start : WINDOW.end] = [inside] * (WINDOW.end - WINDOW.start)
    return day


def history() -> dict[date, list[int]]:
    return {
        date(2026, 11, 27): with_window(10, 100),  # low all day, but the highest window
        date(2026, 11, 24): flat(21),
        date(2026, 11, 23): flat(30),
        date(2026, 11, 20): flat(40),
        date(2026, 11, 19): flat(50),
        date(2026, 11, 18): flat(5),
        date(2026, 11, 17): flat(5),
        date(2026, 11, 16): flat(5),
        date(2026, 11, 13): flat(5),
        date(2026, 11, 12): flat(5),
        PAST_EVENT: flat(1000),  # excluded: an event day
        HOLIDAY: flat(1000),  # excluded: a holiday
        date(2026, 11, 28): flat(1000),  # excluded: weekend
        date(2026, 11, 29): flat(1000),
    }


def example(x: int, y: int) -> Baseline:
    """High x of y over `history()`, with its past event day and holiday excluded."""
    return high_x_of_y(
        history(),
        event_day=EVENT_DAY,
        event_window=WINDOW,
        x=x,
        y=y,
        excluded={PAST_EVENT},
        holidays={HOLIDAY},
    )


def test_similar_days_skip_weekends_holidays_and_event_days() -> None:
    days = similar_days(
        history(), event_day=EVENT_DAY, y=5, excluded={PAST_EVENT}, holidays={HOLIDAY}
    )
    assert days == [date(2026, 11, d) for d in (27, 24, 23, 20, 19)]


def test_high_4_of_5_ranks_days_by_event_window_load() -> None:
    # window totals (8 intervals): 27th 800, 19th 400, 20th 320, 23rd 240, 24th 168
    # -> the four highest are 27, 23, 20, 19 (the 24th drops out)
    # inside the window: (100 + 30 + 40 + 50) / 4 = 55
    # outside:           (10 + 30 + 40 + 50) / 4 = 32.5 -> 33 (half up)
    base = example(4, 5)
    assert base.days == [date(2026, 11, d) for d in (27, 23, 20, 19)]
    assert base.over(WINDOW) == [55] * 8
    assert base.wh[0] == 33 and base.wh[95] == 33


def test_10_of_10_averages_all_ten_days() -> None:
    # inside: (100 + 21 + 30 + 40 + 50 + 5*5) / 10 = 266 / 10 = 26.6 -> 27
    # outside: (10 + 21 + 30 + 40 + 50 + 25) / 10 = 17.6 -> 18
    base = example(10, 10)
    assert len(base.days) == 10 and PAST_EVENT not in base.days and HOLIDAY not in base.days
    assert base.over(WINDOW) == [27] * 8
    assert base.wh[10] == 18


def test_weekend_event_uses_weekend_days_and_holidays() -> None:
    loads = {
        date(2026, 11, 29): flat(7),  # Sun
        date(2026, 11, 28): flat(9),  # Sat
        HOLIDAY: flat(11),  # a holiday counts as a weekend day
        date(2026, 11, 27): flat(500),  # Fri: a weekday, never chosen
    }
    base = high_x_of_y(
        loads, event_day=date(2026, 12, 5), event_window=WINDOW, x=3, y=3, holidays={HOLIDAY}
    )
    # (7 + 9 + 11) / 3 = 9
    assert base.wh == flat(9)


def test_too_few_days_is_an_error_not_a_smaller_sample() -> None:
    with pytest.raises(NotEnoughBaselineDays) as err:
        high_x_of_y(
            {date(2026, 11, 27): flat(1)}, event_day=EVENT_DAY, event_window=WINDOW, x=4, y=5
        )
    assert err.value.extensions == {"found": 1, "needed": 5}


def test_incomplete_days_are_not_eligible() -> None:
    loads = history()
    loads[date(2026, 11, 27)] = [10] * 95  # one interval missing
    days = similar_days(loads, event_day=EVENT_DAY, y=5, excluded={PAST_EVENT}, holidays={HOLIDAY})
    assert date(2026, 11, 27) not in days and days[-1] == date(2026, 11, 18)


def test_bad_window_and_x_rejected() -> None:
    with pytest.raises(BaselineInputInvalid):
        Window(70, 64)
    with pytest.raises(BaselineInputInvalid):
        high_x_of_y(history(), event_day=EVENT_DAY, event_window=WINDOW, x=6, y=5)


def event_day_loads(before: int) -> list[int | None]:
    """Actual event-day load: `before` Wh in every interval up to the event, unknown after."""
    return [before] * WINDOW.start + [None] * (INTERVALS_PER_DAY - WINDOW.start)


@pytest.mark.parametrize(
    ("kind", "before", "inside", "outside"),
    [
        # adjustment window [48, 60) (length 12, gap 4); rounded baseline there is 33
        # additive, actual 35: shift (12*35 - 12*33) / 12 = 2 (cap 6.6) -> 57, 35
        (AdjustmentKind.ADDITIVE, 35, 57, 35),
        # additive, actual 40: shift 7 capped at 0.2 * 33 = 6.6 -> 61.6 -> 62, 39.6 -> 40
        (AdjustmentKind.ADDITIVE, 40, 62, 40),
        # additive, actual 20: shift -13 capped at -6.6 -> 48.4 -> 48, 26.4 -> 26
        (AdjustmentKind.ADDITIVE, 20, 48, 26),
        # multiplicative, actual 36: ratio 36/33 = 12/11 -> 55*12/11 = 60, 33*12/11 = 36
        (AdjustmentKind.MULTIPLICATIVE, 36, 60, 36),
        # multiplicative, actual 66: ratio 2 capped at 1.2 -> 66, 39.6 -> 40
        (AdjustmentKind.MULTIPLICATIVE, 66, 66, 40),
        # no adjustment
        (AdjustmentKind.NONE, 66, 55, 33),
    ],
)
def test_same_day_adjustment_hand_computed(
    kind: AdjustmentKind, before: int, inside: int, outside: int
) -> None:
    loads = history()
    loads[EVENT_DAY] = event_day_loads(before)  # type: ignore[assignment]
    base = high_x_of_y_adjusted(
        loads,
        event_day=EVENT_DAY,
        event_window=WINDOW,
        x=4,
        y=5,
        adjustment=Adjustment(kind=kind),
        excluded={PAST_EVENT},
        holidays={HOLIDAY},
    )
    assert base.over(WINDOW) == [inside] * 8
    assert base.wh[0] == outside


def test_adjustment_skipped_when_the_morning_is_missing() -> None:
    raw = example(4, 5)
    actual = event_day_loads(40)
    actual[50] = None
    adjusted = adjust(raw, actual=actual, event_window=WINDOW, adjustment=Adjustment())  # type: ignore[arg-type]
    assert adjusted == raw


@pytest.mark.parametrize("start", [0, 8, 15])
def test_an_event_in_the_days_first_hours_keeps_the_unadjusted_baseline(start: int) -> None:
    """The default window (3 h ending 1 h before the event) would begin before midnight for an
    event starting before 04:00: no same-day load to adjust from, so no adjustment (it raised
    BaselineInputInvalid, and the event could never be settled)."""
    raw = example(4, 5)
    early = Window(start, start + 4)
    assert Adjustment().window(early) is None
    adjusted = adjust(raw, actual=event_day_loads(40), event_window=early, adjustment=Adjustment())  # type: ignore[arg-type]
    assert adjusted == raw
    assert Adjustment().window(Window(16, 20)) == Window(0, 12)  # from 04:00 it fits


def test_rounding_is_half_up() -> None:
    assert [round_wh(Fraction(n, 2)) for n in (5, -5, 3, -3)] == [3, -2, 2, -1]
    assert round_wh(2.4999) == 2 and round_wh(2.5) == 3


def weekdays_before(day: date, n: int) -> list[date]:
    out: list[date] = []
    d = day
    while len(out) < n:
        d -= timedelta(days=1)
        if d.weekday() < 5:
            out.append(d)
    return out


def test_weather_regression_recovers_a_linear_cooling_load() -> None:
    # 15 weekdays at 18..32 degrees C (CDD 0..14), load 100 + 10 * CDD in every interval.
    # Event day at 30 degrees C: 100 + 10 * 12 = 220 Wh per interval.
    days = weekdays_before(EVENT_DAY, 15)
    loads = {d: flat(100 + 10 * j) for j, d in enumerate(days)}
    temps = {d: [18.0 + j] * INTERVALS_PER_DAY for j, d in enumerate(days)}
    temps[EVENT_DAY] = [30.0] * INTERVALS_PER_DAY
    base = weather_regression(loads, temps, event_day=EVENT_DAY)
    assert base.wh == flat(220)


def test_weather_regression_with_heating_and_cooling() -> None:
    # load = 100 + 10 * CDD + 5 * HDD, temperatures 10..26 degrees C over 17 weekdays.
    # Event at 12 degrees C (HDD 6): 100 + 30 = 130; interval 0 at 25 (CDD 7): 170.
    days = weekdays_before(EVENT_DAY, 17)
    temps = {d: [10.0 + j] * INTERVALS_PER_DAY for j, d in enumerate(days)}
    loads = {
        d: flat(100 + 10 * max(int(t[0]) - 18, 0) + 5 * max(18 - int(t[0]), 0))
        for d, t in temps.items()
    }
    temps[EVENT_DAY] = [25.0] + [12.0] * (INTERVALS_PER_DAY - 1)
    base = weather_regression(loads, temps, event_day=EVENT_DAY)
    assert base.wh[0] == 170 and base.wh[1:] == [130] * 95


def test_weather_regression_needs_enough_days_and_event_temperatures() -> None:
    days = weekdays_before(EVENT_DAY, 5)
    loads = {d: flat(1) for d in days}
    temps = {d: [20.0] * INTERVALS_PER_DAY for d in [*days, EVENT_DAY]}
    with pytest.raises(NotEnoughBaselineDays):
        weather_regression(loads, temps, event_day=EVENT_DAY)
    with pytest.raises(BaselineInputInvalid):
        weather_regression(loads, {}, event_day=EVENT_DAY)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 5_000), min_size=10, max_size=10),
    st.integers(1, 10),
)
def test_high_x_of_y_lies_between_the_chosen_days_and_dominates_y_of_y(
    levels: list[int], x: int
) -> None:
    days = weekdays_before(EVENT_DAY, 10)
    loads = {d: flat(v) for d, v in zip(days, levels, strict=True)}
    top = high_x_of_y(loads, event_day=EVENT_DAY, event_window=WINDOW, x=x, y=10)
    everything = high_x_of_y(loads, event_day=EVENT_DAY, event_window=WINDOW, x=10, y=10)
    chosen = [loads[d][WINDOW.start] for d in top.days]
    assert min(chosen) <= top.wh[WINDOW.start] <= max(chosen)
    assert sorted(chosen, reverse=True) == sorted(levels, reverse=True)[:x]
    assert top.wh[WINDOW.start] >= everything.wh[WINDOW.start]


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 5_000),
    st.integers(0, 20_000),
    st.sampled_from([AdjustmentKind.ADDITIVE, AdjustmentKind.MULTIPLICATIVE]),
)
def test_adjustment_never_moves_the_baseline_more_than_the_cap(
    level: int, morning: int, kind: AdjustmentKind
) -> None:
    days = weekdays_before(EVENT_DAY, 5)
    loads: dict[date, list[int]] = {d: flat(level) for d in days}
    raw = high_x_of_y(loads, event_day=EVENT_DAY, event_window=WINDOW, x=4, y=5)
    adjusted = adjust(
        raw,
        actual=event_day_loads(morning),
        event_window=WINDOW,
        adjustment=Adjustment(kind=kind),
    )
    for before, after in zip(raw.wh, adjusted.wh, strict=True):
        # flat baseline: cap x window mean == cap x this interval; +1 for rounding
        assert abs(after - before) <= Fraction(1, 5) * before + 1
    if morning >= level:
        assert adjusted.wh[0] >= raw.wh[0]
    else:
        assert adjusted.wh[0] <= raw.wh[0]


@given(st.integers(-(10**12), 10**12), st.integers(1, 10**6))
def test_integer_rounding_matches_exact_rounding(numerator: int, denominator: int) -> None:
    exact = Fraction(numerator, denominator)
    assert round_ratio(numerator, denominator) == round_wh(exact)
    assert round_wh(exact) - Fraction(1, 2) <= exact < round_wh(exact) + Fraction(1, 2)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2_000),
    st.integers(0, 200),
    st.integers(0, 200),
    st.floats(-5.0, 35.0, allow_nan=False),
)
def test_weather_regression_recovers_any_degree_day_model(
    intercept: int, per_cdd: int, per_hdd: int, event_temp: float
) -> None:
    # 20 weekdays at 0..38 degrees C (both sides of the 18 degree base): an exact linear model
    days = weekdays_before(EVENT_DAY, 20)
    temps = {d: [2.0 * j] * INTERVALS_PER_DAY for j, d in enumerate(days)}
    loads = {
        d: flat(intercept + per_cdd * max(int(t[0]) - 18, 0) + per_hdd * max(18 - int(t[0]), 0))
        for d, t in temps.items()
    }
    temps[EVENT_DAY] = [event_temp] * INTERVALS_PER_DAY
    expected = intercept + per_cdd * max(event_temp - 18, 0) + per_hdd * max(18 - event_temp, 0)
    base = weather_regression(loads, temps, event_day=EVENT_DAY, min_days=20)
    assert all(abs(v - expected) <= 0.5 + 1e-6 for v in base.wh)

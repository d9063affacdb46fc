"""Delivered reduction, incentive and penalty on hand-computed examples."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.dr.errors import BaselineInputInvalid
from backend.dr.performance import committed_wh_per_interval, evaluate

T0 = 1_796_000_400  # any interval start (unix s); intervals are 900 s apart
STARTS = [T0, T0 + 900, T0 + 1800, T0 + 2700]


def test_committed_power_to_interval_energy() -> None:
    # 1000 W for 15 min = 250 Wh; 1001 W = 250.25 Wh -> 250 (floor)
    assert committed_wh_per_interval(1000) == 250
    assert committed_wh_per_interval(1001) == 250
    assert committed_wh_per_interval(1004) == 251


def test_delivered_incentive_and_penalty_hand_computed() -> None:
    # committed 2000 W -> 500 Wh per interval; incentive 300, penalty 150 token units/kWh
    #   interval  baseline  metered  delivered  credited  shortfall
    #   0         1000      400      600        600       0
    #   1         1000      700      300        300       200
    #   2         1000      1200     -200       0         500   (load above baseline)
    #   3         1000      None     0          0         500   (no verified reading)
    # credited 900 Wh -> 900 * 300 / 1000 = 270; shortfall 1200 Wh -> 1200 * 150 / 1000 = 180
    perf = evaluate(
        interval_starts=STARTS,
        baseline_wh=[1000] * 4,
        metered_wh=[400, 700, 1200, None],
        committed_w=2000,
        incentive_per_kwh=300,
        penalty_per_kwh=150,
    )
    assert [r.delivered_wh for r in perf.intervals] == [600, 300, -200, 0]
    assert [r.credited_wh for r in perf.intervals] == [600, 300, 0, 0]
    assert [r.shortfall_wh for r in perf.intervals] == [0, 200, 500, 500]
    assert (perf.credited_wh, perf.shortfall_wh) == (900, 1200)
    assert (perf.incentive, perf.penalty, perf.net) == (270, 180, 90)


def test_money_is_floored_once_on_the_totals() -> None:
    # credited 333 + 333 = 666 Wh at 7 units/kWh = 4.662 -> 4 (per interval it would be 2 + 2)
    perf = evaluate(
        interval_starts=STARTS[:2],
        baseline_wh=[333, 333],
        metered_wh=[0, 0],
        committed_w=0,
        incentive_per_kwh=7,
        penalty_per_kwh=7,
    )
    assert (perf.incentive, perf.penalty) == (4, 0)


def test_mismatched_lengths_and_negative_prices_rejected() -> None:
    with pytest.raises(BaselineInputInvalid):
        evaluate(
            interval_starts=STARTS,
            baseline_wh=[1],
            metered_wh=[1],
            committed_w=0,
            incentive_per_kwh=1,
            penalty_per_kwh=1,
        )
    with pytest.raises(BaselineInputInvalid):
        evaluate(
            interval_starts=STARTS[:1],
            baseline_wh=[1],
            metered_wh=[1],
            committed_w=0,
            incentive_per_kwh=-1,
            penalty_per_kwh=1,
        )


readings = st.lists(
    st.tuples(st.integers(0, 10_000), st.one_of(st.none(), st.integers(0, 10_000))),
    min_size=1,
    max_size=12,
)


@settings(max_examples=100, deadline=None)
@given(readings, st.integers(0, 40_000), st.integers(0, 10**6), st.integers(0, 10**6))
def test_credit_plus_shortfall_covers_the_commitment(
    rows: list[tuple[int, int | None]], committed_w: int, incentive: int, penalty: int
) -> None:
    perf = evaluate(
        interval_starts=[T0 + 900 * i for i in range(len(rows))],
        baseline_wh=[b for b, _ in rows],
        metered_wh=[m for _, m in rows],
        committed_w=committed_w,
        incentive_per_kwh=incentive,
        penalty_per_kwh=penalty,
    )
    for r in perf.intervals:
        assert r.credited_wh >= 0 and r.shortfall_wh >= 0
        assert r.credited_wh + r.shortfall_wh >= r.committed_wh
        assert r.credited_wh <= max(r.baseline_wh, 0)
        if r.metered_wh is None:
            assert r.credited_wh == 0
    assert 0 <= perf.credited_wh * incentive - 1000 * perf.incentive < 1000
    assert 0 <= perf.shortfall_wh * penalty - 1000 * perf.penalty < 1000

"""Largest-remainder pro-rata shares: hand-checked numbers and the conservation property."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.vpp.allocation import largest_remainder


def test_hand_checked_shares_with_remainders():
    # 1,000 units over 3,000 / 2,000 / 1,000 Wh: exact 500, 333.33, 166.67 -> floors 500, 333,
    # 166 leave 1 unit; the largest remainder (c: 2/3 of a unit) takes it
    assert largest_remainder(1_000, {"a": 3_000, "b": 2_000, "c": 1_000}, "agg") == {
        "a": 500,
        "b": 333,
        "c": 167,
    }
    # 100 over three equal parts: remainders tie, the smaller ids take the spare unit
    assert largest_remainder(100, {"c": 7, "b": 7, "a": 7}, "agg") == {"a": 34, "b": 33, "c": 33}
    # 7 over 1 / 1 / 1 / 4 Wh: exact 1, 1, 1, 4
    assert largest_remainder(7, {"w": 1, "x": 1, "y": 1, "z": 4}, "agg") == {
        "w": 1,
        "x": 1,
        "y": 1,
        "z": 4,
    }


def test_a_member_without_delivery_gets_nothing_and_nobody_leaves_it_to_the_aggregator():
    shares = largest_remainder(999, {"a": 1_200, "idle": 0}, "agg")
    assert shares == {"a": 999} and "idle" not in shares
    assert largest_remainder(450, {"idle": 0}, "agg") == {"agg": 450}
    assert largest_remainder(0, {"a": 5, "b": 9}, "agg") == {"a": 0, "b": 0}


def test_negative_inputs_are_refused():
    with pytest.raises(ValueError):
        largest_remainder(-1, {"a": 1}, "agg")
    with pytest.raises(ValueError):
        largest_remainder(1, {"a": -1}, "agg")


@given(
    st.integers(min_value=0, max_value=10**30),
    st.dictionaries(st.text(min_size=1, max_size=4), st.integers(0, 10**9), max_size=12),
)
def test_shares_sum_to_the_whole_and_stay_within_one_unit(amount, weights):
    shares = largest_remainder(amount, weights, "\x00agg")
    assert sum(shares.values()) == amount
    total = sum(weights.values())
    if total == 0:
        assert shares == {"\x00agg": amount}
        return
    for key, share in shares.items():
        exact = Fraction(amount * weights[key], total)
        assert exact - 1 < share <= exact + 1 and weights[key] > 0

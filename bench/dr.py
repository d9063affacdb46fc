"""Demand response: customer baselines for many meters (`cbl_s_10k_meters`, goal <= 10 s).

10,000 meters, each with 10 weekdays of 15-minute history and the event day's morning
(seeded random loads, generated outside the timing). Timed: the high 4 of 5 baseline with the
capped additive same-day adjustment (PJM), and the 10 of 10 baseline with the multiplicative
one (CAISO), per meter through backend/dr/baselines.py (exact integer rounding). Baseline in
the same run: a naive per-interval mean of the 10 days for all meters at once in numpy (no day
selection, no adjustment, float) - the floor of what any CBL costs; the ratio is printed.
Then the OpenADR VTN under 1,000 polling VENs (`vtn_poll_p99_ms`, `vtn_polls_per_s`, against
a floor server in the same run): bench/_vtn_load.py. (`dr_settle_per_s` belongs to on-chain
DR settlement.)
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import numpy as np

from backend.dr.baselines import (
    INTERVALS_PER_DAY,
    Adjustment,
    AdjustmentKind,
    Window,
    adjust,
    high_x_of_y,
)
from bench import _vtn_load

METERS = int(os.environ.get("GRIDLEDGER_BENCH_DR_METERS", "10000"))
EVENT_DAY = date(2027, 1, 15)  # a Friday
WINDOW = Window(56, 72)  # 14:00-18:00 UTC
HISTORY_DAYS = 10


def weekdays_before(day: date, n: int) -> list[date]:
    out: list[date] = []
    while len(out) < n:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            out.append(day)
    return out


def run(meters: int = METERS) -> Iterator[dict[str, Any]]:
    rng = np.random.default_rng(18)
    days = weekdays_before(EVENT_DAY, HISTORY_DAYS)
    loads = rng.integers(100, 2_000, size=(meters, HISTORY_DAYS + 1, INTERVALS_PER_DAY))

    started = time.perf_counter()
    naive = loads[:, :HISTORY_DAYS, :].mean(axis=1)
    assert naive.shape == (meters, INTERVALS_PER_DAY)
    naive_s = time.perf_counter() - started

    timed = 0.0
    for meter in range(meters):
        rows = loads[meter].tolist()
        history = dict(zip(days, rows[:HISTORY_DAYS], strict=True))
        morning: list[int | None] = rows[HISTORY_DAYS][: WINDOW.start]
        actual = morning + [None] * (INTERVALS_PER_DAY - WINDOW.start)
        started = time.perf_counter()
        for x, y, kind in (
            (4, 5, AdjustmentKind.ADDITIVE),
            (10, 10, AdjustmentKind.MULTIPLICATIVE),
        ):
            raw = high_x_of_y(history, event_day=EVENT_DAY, event_window=WINDOW, x=x, y=y)
            adjust(raw, actual=actual, event_window=WINDOW, adjustment=Adjustment(kind=kind))
        timed += time.perf_counter() - started

    label = "10k_meters" if meters == 10_000 else f"{meters}_meters"
    yield {"metric": f"cbl_s_{label}", "value": round(timed, 3), "unit": "s"}
    yield {"metric": f"naive_mean_s_{label}", "value": round(naive_s, 4), "unit": "s"}
    yield {"metric": "cbl_per_meter_ms", "value": round(1000 * timed / meters, 4), "unit": "ms"}
    yield {"metric": "ratio_vs_naive_mean", "value": round(timed / naive_s, 1), "unit": "x"}
    yield from _vtn_load.run()

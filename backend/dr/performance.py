"""DR performance: delivered reduction against the baseline, incentive and penalty.

Per 15-minute interval of the event:

    delivered_wh = baseline_wh - metered_wh            (signed; metered = import - export)
    credited_wh  = max(delivered_wh, 0)                (load above baseline earns nothing)
    shortfall_wh = max(committed_wh - credited_wh, 0)

An interval without a VERIFIED reading counts as delivering nothing (credited 0, shortfall =
committed): unverified or missing data never earns an incentive (backend/meters: `verified`).

Money, once per participant per event, on the totals (integer token units):

    incentive = floor(sum(credited_wh) * incentive_per_kwh / 1000)
    penalty   = floor(sum(shortfall_wh) * penalty_per_kwh / 1000)

Rounding once on the totals keeps the loss below one token unit per participant and event;
flooring never pays out, nor charges, a fraction nobody earned. The committed reduction is a
power (W) over the event: committed_wh per interval = floor(committed_w * 900 / 3600).

Paying these amounts on chain (escrowed program budget, pull payments, exactly once) is a later
step; this module computes what is owed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from backend.dr.baselines import INTERVAL_SECONDS
from backend.dr.errors import BaselineInputInvalid


@dataclass(frozen=True)
class IntervalPerformance:
    interval_start: int  # unix seconds
    baseline_wh: int
    metered_wh: int | None  # None: no verified reading for the interval
    committed_wh: int
    delivered_wh: int
    credited_wh: int
    shortfall_wh: int


@dataclass(frozen=True)
class Performance:
    intervals: list[IntervalPerformance]
    credited_wh: int
    shortfall_wh: int
    incentive: int  # token units owed to the participant
    penalty: int  # token units owed by the participant

    @property
    def net(self) -> int:
        return self.incentive - self.penalty


def committed_wh_per_interval(committed_w: int, interval_s: int = INTERVAL_SECONDS) -> int:
    """Energy of a committed power reduction over one interval, floored to Wh."""
    return committed_w * interval_s // 3600


def interval_performance(
    *, interval_start: int, baseline_wh: int, metered_wh: int | None, committed_wh: int
) -> IntervalPerformance:
    delivered = 0 if metered_wh is None else baseline_wh - metered_wh
    credited = max(delivered, 0)
    return IntervalPerformance(
        interval_start=interval_start,
        baseline_wh=baseline_wh,
        metered_wh=metered_wh,
        committed_wh=committed_wh,
        delivered_wh=delivered,
        credited_wh=credited,
        shortfall_wh=max(committed_wh - credited, 0),
    )


def evaluate(
    *,
    interval_starts: Sequence[int],
    baseline_wh: Sequence[int],
    metered_wh: Sequence[int | None],
    committed_w: int,
    incentive_per_kwh: int,
    penalty_per_kwh: int,
) -> Performance:
    """Performance of one participant over one event (see the module docstring for rules)."""
    if not len(interval_starts) == len(baseline_wh) == len(metered_wh):
        raise BaselineInputInvalid(
            "interval starts, baseline and metered load differ in length",
            intervals=len(interval_starts),
            baseline=len(baseline_wh),
            metered=len(metered_wh),
        )
    if committed_w < 0 or incentive_per_kwh < 0 or penalty_per_kwh < 0:
        raise BaselineInputInvalid("commitment, incentive and penalty must not be negative")
    committed = committed_wh_per_interval(committed_w)
    rows = [
        interval_performance(
            interval_start=start, baseline_wh=base, metered_wh=metered, committed_wh=committed
        )
        for start, base, metered in zip(interval_starts, baseline_wh, metered_wh, strict=True)
    ]
    credited = sum(r.credited_wh for r in rows)
    shortfall = sum(r.shortfall_wh for r in rows)
    return Performance(
        intervals=rows,
        credited_wh=credited,
        shortfall_wh=shortfall,
        incentive=credited * incentive_per_kwh // 1000,
        penalty=shortfall * penalty_per_kwh // 1000,
    )

"""Medians of repeated benchmark runs (`python -m bench --repeat N`).

Each run's baselines and ratios are measured in that run, so the median of a ratio is the median
of same-run ratios, never a ratio of medians taken from different runs.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

Figure = dict[str, Any]


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def keyed(figures: Sequence[Figure]) -> dict[tuple[str, int], Figure]:
    """A run's figures by (metric, occurrence): a metric printed twice in one run stays two."""
    seen: dict[str, int] = {}
    by_key: dict[tuple[str, int], Figure] = {}
    for figure in figures:
        metric = str(figure["metric"])
        by_key[(metric, seen.get(metric, 0))] = figure
        seen[metric] = seen.get(metric, 0) + 1
    return by_key


def medians(runs: Sequence[Sequence[Figure]]) -> list[Figure]:
    """One figure per metric over `runs` (each a list of one run's figures), in first-seen order:
    `value` is the median of the runs' numeric values, `runs` lists every run's value (None where
    a run did not print the metric); the other fields are those of the run whose value is the
    (low) median. A metric with a non-numeric value keeps its last run's value."""
    by_run = [keyed(figures) for figures in runs]
    order: dict[tuple[str, int], None] = {}
    for run in by_run:
        order.update(dict.fromkeys(run))
    merged: list[Figure] = []
    for key in order:
        present = [run[key] for run in by_run if key in run]
        values = [figure["value"] for figure in present]
        if all(is_number(value) for value in values):
            low = statistics.median_low(values)
            figure = {**present[values.index(low)], "value": statistics.median(values)}
        else:
            figure = dict(present[-1])
        figure["runs"] = [run[key]["value"] if key in run else None for run in by_run]
        merged.append(figure)
    return merged

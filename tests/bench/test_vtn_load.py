"""The VTN load bench runs small (5 VENs, 3 s of polling) end to end: a real VTN process with
TLS client certificates and a scratch PostgreSQL schema, against the floor server."""

from __future__ import annotations

import math

from bench import _vtn_load

METRICS = {
    "vtn_poll_p99_ms",
    "vtn_poll_p50_ms",
    "vtn_polls_per_s",
    "vtn_polls_failed",
    "vtn_cpu_ms_per_poll",
    "floor_poll_p99_ms",
    "floor_polls_per_s",
    "floor_cpu_ms_per_poll",
    "vtn_p99_ratio_vs_floor",
    "vtn_polls_per_s_ratio_vs_floor",
    "vtn_cpu_per_poll_ratio_vs_floor",
}


def test_vtn_load_bench_on_five_vens() -> None:
    rows = list(_vtn_load.run(vens_count=5, seconds=3))
    figures = {row["metric"]: row["value"] for row in rows}
    assert set(figures) == METRICS and len(rows) == len(METRICS)
    assert all(set(row) == {"metric", "value", "unit"} for row in rows)
    # every scheduled poll was answered with responseCode 200, and some were measured
    assert figures["vtn_polls_failed"] == 0
    assert 0 < figures["vtn_poll_p50_ms"] <= figures["vtn_poll_p99_ms"]
    assert math.isfinite(figures["vtn_poll_p99_ms"]) and math.isfinite(figures["floor_poll_p99_ms"])
    assert figures["vtn_polls_per_s"] > 0 and figures["floor_polls_per_s"] > 0
    assert figures["vtn_cpu_ms_per_poll"] > 0 and figures["floor_cpu_ms_per_poll"] > 0
    assert figures["vtn_polls_per_s_ratio_vs_floor"] > 0
    print({k: figures[k] for k in sorted(figures)})


def test_short_runs_shorten_the_period_and_the_burst() -> None:
    assert _vtn_load.Phases.for_seconds(3) == _vtn_load.Phases(3, 3, 3)
    assert _vtn_load.Phases.for_seconds(30) == _vtn_load.Phases(
        _vtn_load.PERIOD_S, 30, _vtn_load.BURST_S
    )

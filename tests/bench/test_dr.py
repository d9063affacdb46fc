"""The DR benchmark runs end to end on a few meters and prints its figures with a ratio."""

from __future__ import annotations

from bench.dr import run


def test_dr_bench_figures_on_a_few_meters() -> None:
    figures = {f["metric"]: f for f in run(meters=20)}
    assert set(figures) == {
        "cbl_s_20_meters",
        "naive_mean_s_20_meters",
        "cbl_per_meter_ms",
        "ratio_vs_naive_mean",
    }
    assert figures["cbl_s_20_meters"]["value"] > 0
    assert figures["cbl_s_20_meters"]["unit"] == "s"

"""The DR benchmark runs end to end on a few meters and prints its figures with a ratio."""

from __future__ import annotations

import pytest

from bench.dr import cbl_figures, settle_figures


def test_dr_bench_figures_on_a_few_meters() -> None:
    figures = {f["metric"]: f for f in cbl_figures(meters=20)}
    assert set(figures) == {
        "cbl_s_20_meters",
        "naive_mean_s_20_meters",
        "cbl_per_meter_ms",
        "ratio_vs_naive_mean",
    }
    assert figures["cbl_s_20_meters"]["value"] > 0
    assert figures["cbl_s_20_meters"]["unit"] == "s"


@pytest.mark.anvil
def test_dr_settle_figures_batched_against_one_by_one() -> None:
    figures = {f["metric"]: f["value"] for f in settle_figures(participants=12, batch=6)}
    assert set(figures) == {
        "dr_settle_per_s",
        "dr_settle_one_by_one_per_s",
        "dr_settle_ratio_vs_one_by_one",
        "dr_settle_batch6_gas_per_participant",
        "dr_settle_one_by_one_gas_per_participant",
    }
    assert figures["dr_settle_per_s"] > 0 and figures["dr_settle_one_by_one_per_s"] > 0
    # a batch shares the transaction's base cost: fewer gas per participant than one by one
    assert (
        figures["dr_settle_batch6_gas_per_participant"]
        < figures["dr_settle_one_by_one_gas_per_participant"]
    )

"""The dispatch benchmark runs end to end on a few devices and reports its baseline ratio."""

from __future__ import annotations

import pytest

from bench.vpp_dispatch import run

pytestmark = pytest.mark.mqtt


def test_dispatch_bench_figures_on_a_few_devices() -> None:
    figures = {f["metric"]: f for f in run(devices=3)}
    assert set(figures) == {
        "dispatch_s_3_devices",
        "dispatch_acked_per_s",
        "mqtt_round_trip_s_3_devices",
        "dispatch_ratio_vs_mqtt",
    }
    seconds = figures["dispatch_s_3_devices"]["value"]
    assert seconds > 0 and figures["dispatch_acked_per_s"]["value"] == pytest.approx(
        6 / seconds, rel=0.05
    )
    ratio = seconds / figures["mqtt_round_trip_s_3_devices"]["value"]
    assert figures["dispatch_ratio_vs_mqtt"]["value"] == pytest.approx(ratio, rel=0.1)

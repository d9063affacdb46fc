"""The settlement benchmark settles every one of a few trades (it once printed 0 trades/s,
settled 0, because its meter readings were unverified and every trade waited for data)."""

from __future__ import annotations

from bench.settle import run


def test_settle_bench_settles_every_trade() -> None:
    figures = {f["metric"]: f for f in run(trades_count=24, baseline_count=4, batch=5, depth=3)}
    assert figures["trades"]["value"] == 28
    assert figures["trades_per_s"]["settled"] == 24
    assert figures["trades_per_s"]["already_closed"] == 4  # the baseline settled those
    assert figures["trades_per_s"]["pipeline_depth"] == 3
    assert figures["trades_per_s"]["value"] > 0
    assert figures["baseline_trades_per_s"]["value"] > 0
    assert figures["ratio"]["value"] > 0

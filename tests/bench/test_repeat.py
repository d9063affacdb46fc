"""`python -m bench --repeat N`: one line per metric with the median and every run's value."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

import bench.__main__ as cli
from bench._repeat import medians


def test_medians_take_the_median_value_and_the_median_runs_other_fields() -> None:
    runs = [
        [{"metric": "rps", "value": v, "unit": "req/s", "p": p}, {"metric": "ok", "value": ok}]
        for v, p, ok in ((120, 1, "yes"), (90, 2, "no"), (100, 3, "yes"))
    ]
    assert medians(runs) == [
        {"metric": "rps", "value": 100, "unit": "req/s", "p": 3, "runs": [120, 90, 100]},
        {"metric": "ok", "value": "yes", "runs": ["yes", "no", "yes"]},
    ]


def test_medians_of_an_even_count_average_the_middle_two_and_keep_missing_runs() -> None:
    runs = [
        [{"metric": "a", "value": 1.0}, {"metric": "a", "value": 10}],
        [{"metric": "a", "value": 3.0}, {"metric": "a", "value": 30}, {"metric": "b", "value": 5}],
    ]
    assert medians(runs) == [
        {"metric": "a", "value": 2.0, "runs": [1.0, 3.0]},
        {"metric": "a", "value": 20, "runs": [10, 30]},  # a metric printed twice stays two
        {"metric": "b", "value": 5, "runs": [None, 5]},
    ]


def fake_bench(values: list[int]) -> types.ModuleType:
    module = types.ModuleType("bench.health_settle_fake")
    calls = iter(values)

    def run() -> Iterator[dict[str, Any]]:
        yield {"metric": "x_per_s", "value": next(calls), "unit": "1/s"}

    module.run = run  # type: ignore[attr-defined]
    return module


def test_repeat_runs_the_bench_n_times_and_prints_medians(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "bench.health_settle_fake", fake_bench([7, 3, 5]))
    monkeypatch.setattr(cli, "available", lambda: ["health_settle_fake"])
    assert cli.main(["--repeat", "3", "health_settle_fake"]) == 0
    out = capsys.readouterr()
    lines = [json.loads(line) for line in out.out.splitlines()]
    assert lines == [
        {
            "bench": "health_settle_fake",
            "metric": "x_per_s",
            "value": 5,
            "unit": "1/s",
            "runs": [7, 3, 5],
        }
    ]
    assert "run 3/3 done" in out.err


def test_without_repeat_each_figure_is_printed_as_measured(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "bench.health_settle_fake", fake_bench([7]))
    monkeypatch.setattr(cli, "available", lambda: ["health_settle_fake"])
    assert cli.main(["health_settle_fake"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "bench": "health_settle_fake",
        "metric": "x_per_s",
        "value": 7,
        "unit": "1/s",
    }


def test_repeat_refuses_zero_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--repeat", "0", "gas"])
    assert exit_info.value.code == 2

"""Demand response: customer baselines for many meters (`cbl_s_10k_meters`, goal <= 10 s) and
DR results settled on chain (`dr_settle_per_s`).

10,000 meters, each with 10 weekdays of 15-minute history and the event day's morning
(seeded random loads, generated outside the timing). Timed: the high 4 of 5 baseline with the
capped additive same-day adjustment (PJM), and the 10 of 10 baseline with the multiplicative
one (CAISO), per meter through backend/dr/baselines.py (exact integer rounding). Baseline in
the same run: a naive per-interval mean of the 10 days for all meters at once in numpy (no day
selection, no adjustment, float) - the floor of what any CBL costs; the ratio is printed.

`dr_settle_per_s`: participants settled per second on a fresh Anvil (automine) through
DemandResponse.settle in batches of `dr_settlement_batch_size` (50), each batch signed, sent
and its receipt awaited as the worker does; baseline in the same run: the same number of
participants settled one per transaction (`dr_settle_one_by_one_per_s`); the ratio and gas per
participant of both are printed. Half the participants owe a penalty (no collateral posted, so
nothing is taken), half earn an incentive.
Then the OpenADR VTN under 1,000 polling VENs (`vtn_poll_p99_ms`, `vtn_polls_per_s`, against
a floor server in the same run): bench/_vtn_load.py.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import numpy as np
from eth_account import Account
from eth_utils import to_checksum_address

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
SETTLE_PARTICIPANTS = int(os.environ.get("GRIDLEDGER_BENCH_DR_SETTLE_PARTICIPANTS", "300"))
SETTLE_BATCH = 50
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


def run(
    meters: int = METERS, settle_participants: int = SETTLE_PARTICIPANTS
) -> Iterator[dict[str, Any]]:
    yield from cbl_figures(meters)
    yield from settle_figures(settle_participants)
    yield from _vtn_load.run()


def cbl_figures(meters: int) -> Iterator[dict[str, Any]]:
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


def settle_figures(participants: int, batch: int = SETTLE_BATCH) -> Iterator[dict[str, Any]]:
    from bench._devnet import deployed_devnet

    results = [
        (Account.create().address, 0 if n % 2 else 1_000 + n, 500 + n if n % 2 else 0)
        for n in range(participants)
    ]
    with deployed_devnet(participants=1) as (_, _, deployment, wl):
        contract = wl.w3.eth.contract(
            address=to_checksum_address(deployment.contracts["DemandResponse"].address),
            abi=deployment.contracts["DemandResponse"].abi,
        )
        dr, token = contract.functions, wl.c.token.functions
        (utility,) = wl.people
        program = uuid.uuid4().bytes.ljust(32, b"\x00")
        budget = sum(incentive for _, incentive, _ in results) * 2
        wl.tx(utility, token.approve(contract.address, budget))
        wl.tx(utility, dr.createProgram(program, budget))

        def settle(event: bytes, chunks: list[list[tuple[str, int, int]]]) -> tuple[float, int]:
            gas = 0
            started = time.perf_counter()
            for chunk in chunks:
                gas += wl.tx(wl.settler, dr.settle(program, event, chunk), gas=15_000_000)[
                    "gasUsed"
                ]
            return time.perf_counter() - started, gas

        one_s, one_gas = settle(b"\x01" * 32, [[r] for r in results])
        batched_s, batched_gas = settle(
            b"\x02" * 32, [results[i : i + batch] for i in range(0, participants, batch)]
        )
        assert dr.totalBudgets().call() == budget - 2 * sum(i for _, i, _ in results)
    yield {"metric": "dr_settle_per_s", "value": round(participants / batched_s, 1), "unit": "1/s"}
    yield {
        "metric": "dr_settle_one_by_one_per_s",
        "value": round(participants / one_s, 1),
        "unit": "1/s",
    }
    yield {
        "metric": "dr_settle_ratio_vs_one_by_one",
        "value": round(one_s / batched_s, 2),
        "unit": "x",
    }
    yield {
        "metric": f"dr_settle_batch{batch}_gas_per_participant",
        "value": batched_gas // participants,
        "unit": "gas",
    }
    yield {
        "metric": "dr_settle_one_by_one_gas_per_participant",
        "value": one_gas // participants,
        "unit": "gas",
    }

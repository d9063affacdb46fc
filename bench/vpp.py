"""VPP dispatch: the LP (HiGHS through SciPy) on 200 resources × 96 slots, against the seed's
genetic algorithm on the same instance (`bench/_vpp_ga.py`).

Figures: `optimize_s_200x96` (median LP wall time, goal ≤ 2 s), `ga_s_200x96` (GA wall
time), both also as this process's CPU time (`*_cpu_s_*`: the machine is shared),
`cost_ratio_vs_ga` (LP cost / GA cost, goal ≤ 1.0; both costs include penalties), and the two
costs. Forecasts: `forecast_s_1000_meters` (weather, backtest, fit and 24 h forecast of
1000 meters from 28 days of history each, goal ≤ 30 s; history generated in memory, not read
from the database) and `forecast_mae_ratio_vs_naive` (MAE of the served forecasts over the
next day, summed over the meters, / the seasonal-naive forecasts' MAE, goal < 1.0; the
simulated weather is exact, so `forecast_mae_ratio_vs_naive_noisy_weather` redoes 200 meters
with tomorrow's weather perturbed as a real day-ahead forecast would be). The
instance (seeded): 100 home batteries, 60 EVs plugged in overnight with a target
SoC at 07:00, 40 heat pumps that need their daily energy; a neighbourhood's demand and PV
forecast; time-of-use prices with an evening peak, export paid at half the import price.
Flexibility: `order_plan_s_{label}` (a day of orders planned on the LP's schedule, every
battery's headroom sequential across slots, half of it relied on: backend/vpp/order_plan.py),
`optimize_reserved_s_{label}` (the LP again, each store reserving what those orders committed)
and `reserved_kept_ratio` (the headroom the re-plan leaves for them / what they committed, goal
1.0). Telemetry: `telemetry_samples_per_s` (DER samples over MQTT into `der_telemetry`, end to end;
measured by bench/mqtt_ingest.py).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np

from backend.forecast import model as forecaster
from backend.forecast.synthetic import household_wh, pv_wh
from backend.forecast.weather import SimulatedWeather, slot_weather
from backend.vpp.dispatch import DispatchProblem, FlexibleLoad, Schedule, Storage, optimize
from backend.vpp.order_plan import Battery, Headroom, PlanInputs, battery_limits, plan_orders
from bench._vpp_ga import optimize_ga
from bench.mqtt_ingest import telemetry_figures

RESOURCES = int(os.environ.get("GRIDLEDGER_BENCH_VPP_RESOURCES", "200"))
SLOTS = 96
REPEATS = int(os.environ.get("GRIDLEDGER_BENCH_VPP_REPEATS", "3"))
FORECAST_METERS = int(os.environ.get("GRIDLEDGER_BENCH_FORECAST_METERS", "1000"))
FORECAST_DAYS = 28
FORECAST_START = 1_767_225_600  # 2026-01-01T00:00Z
SLOT_SECONDS = 900


def instance(resources: int = RESOURCES, slots: int = SLOTS, seed: int = 17) -> DispatchProblem:
    """A day of one neighbourhood VPP: half batteries, 30 % EVs, 20 % heat pumps."""
    rng = np.random.default_rng(seed)
    hours = np.arange(slots) * 24 / slots
    evening = np.exp(-(((hours - 19) / 2.5) ** 2))
    morning = np.exp(-(((hours - 8) / 2) ** 2))
    sun = np.clip(np.sin((hours - 6) / 12 * np.pi), 0, None)
    homes = resources
    demand = homes * 0.25 * (350 + 900 * evening + 400 * morning) * rng.uniform(0.9, 1.1, slots)
    pv = homes * 0.3 * 0.25 * 5_000 * sun * rng.uniform(0.7, 1.0, slots)
    buy = 150 + 250 * evening + 80 * morning
    batteries, evs = resources // 2, resources * 3 // 10
    plugged = [(h >= 18) or (h < 7) for h in hours]
    storage = [
        Storage(
            id=f"bat-{i}",
            energy_capacity_wh=int(rng.choice([10_000, 13_500, 20_000])),
            max_charge_w=5_000,
            max_discharge_w=5_000,
            initial_soc_wh=5_000,
            min_soc_wh=1_000,
            charge_efficiency=0.95,
            discharge_efficiency=0.95,
        )
        for i in range(batteries)
    ] + [
        Storage(
            id=f"ev-{i}",
            energy_capacity_wh=60_000,
            max_charge_w=int(rng.choice([7_400, 11_000])),
            max_discharge_w=0,
            initial_soc_wh=int(rng.integers(10_000, 30_000)),
            final_soc_wh=0,
            charge_efficiency=0.92,
            plugged=plugged,
            target_slot=int(7 * slots / 24) - 1,
            target_soc_wh=48_000,
        )
        for i in range(evs)
    ]
    loads = [
        FlexibleLoad(id=f"hp-{i}", energy_wh=int(rng.integers(6_000, 14_000)), max_w=3_000)
        for i in range(resources - batteries - evs)
    ]
    return DispatchProblem(
        buy_price=list(buy),
        sell_price=list(buy / 2),
        demand_wh=list(demand),
        pv_wh=list(pv),
        storage=storage,
        loads=loads,
        min_renewable_share=0.0,
        penalty_per_kwh=2_000.0,
    )


def timed(fn: Any, *args: Any) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process, result): on a shared machine the CPU time
    says what the solve costs when the wall time waits for other people's work."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def run() -> Iterator[dict[str, Any]]:
    problem = instance()
    label = f"{RESOURCES}x{SLOTS}"
    lp_runs = [timed(optimize, problem) for _ in range(REPEATS)]
    lp_seconds = statistics.median(t for t, _, _ in lp_runs)
    lp_cpu = statistics.median(c for _, c, _ in lp_runs)
    lp_cost = lp_runs[0][2].cost
    ga_seconds, ga_cpu, ga = timed(optimize_ga, problem)
    yield {"metric": f"optimize_s_{label}", "value": round(lp_seconds, 3), "unit": "s"}
    yield {"metric": f"optimize_cpu_s_{label}", "value": round(lp_cpu, 3), "unit": "s"}
    yield {"metric": f"ga_s_{label}", "value": round(ga_seconds, 3), "unit": "s"}
    yield {"metric": f"ga_cpu_s_{label}", "value": round(ga_cpu, 3), "unit": "s"}
    yield {"metric": "lp_cost", "value": round(lp_cost), "unit": "token units"}
    yield {"metric": "ga_cost", "value": round(ga.cost), "unit": "token units"}
    yield {"metric": "cost_ratio_vs_ga", "value": round(lp_cost / ga.cost, 4), "unit": "ratio"}
    yield {"metric": "speedup_vs_ga", "value": round(ga_seconds / lp_seconds, 2), "unit": "x"}
    yield from flexibility_figures(problem, lp_runs[0][2], label)
    yield from forecast_figures()
    yield from telemetry_figures()  # MQTT into der_telemetry (bench/mqtt_ingest.py)


def headroom_of(problem: DispatchProblem, schedule: Schedule, start: int) -> list[Headroom]:
    """Each discharging store's headroom beyond the LP's schedule (as trading reads it)."""
    setpoints = schedule.setpoints_w()
    found = []
    for store in problem.storage:
        if store.max_discharge_w <= 0:
            continue
        battery = Battery(store.max_discharge_w, store.min_soc_wh, store.discharge_efficiency)
        soc = [round(v) for v in schedule.soc_wh[store.id]]
        power, stored = battery_limits(battery, setpoints[store.id], soc)
        slots = [start + n * SLOT_SECONDS for n in range(len(power))]
        found.append(
            Headroom(
                store.id,
                dict(zip(slots, power, strict=True)),
                dict(zip(slots, stored, strict=True)),
            )
        )
    return found


def flexibility_figures(
    problem: DispatchProblem, schedule: Schedule, label: str
) -> Iterator[dict[str, Any]]:
    start = FORECAST_START
    net = np.asarray(problem.pv_wh) - np.asarray(problem.demand_wh)
    inputs = PlanInputs(
        forecast_start=start,
        forecast_wh=[round(v) for v in net],
        headroom=headroom_of(problem, schedule, start),
        sell_price={},
        buy_price={},
        now=start - 60,
        traded=set(),
        min_wh=100,
        flex_share=0.5,
        default_price=100_000,
    )
    seconds, cpu, plans = timed(plan_orders, inputs)
    committed: dict[str, list[float]] = {}
    for plan in plans:
        for part in plan.flexSplit:
            series = committed.setdefault(part.resourceId, [0.0] * len(net))
            series[(part.slot - start) // SLOT_SECONDS] += part.wh
    reserved = replace(
        problem,
        storage=[replace(s, reserved_wh=committed.get(s.id)) for s in problem.storage],
    )
    replan_seconds, _, replan = timed(optimize, reserved)
    kept = headroom_of(reserved, replan, start)
    room = sum(
        min(h.available(s), committed[h.resource_id][(s - start) // SLOT_SECONDS])
        for h in kept
        if h.resource_id in committed
        for s in h.power
    )
    total = sum(sum(v) for v in committed.values())
    yield {"metric": f"order_plan_s_{label}", "value": round(seconds, 3), "unit": "s"}
    yield {"metric": f"order_plan_cpu_s_{label}", "value": round(cpu, 3), "unit": "s"}
    yield {"metric": "order_plan_flex_wh", "value": round(total), "unit": "Wh"}
    yield {"metric": f"optimize_reserved_s_{label}", "value": round(replan_seconds, 3), "unit": "s"}
    yield {
        "metric": "reserved_kept_ratio",
        "value": round(room / total, 4) if total else 1.0,
        "unit": "ratio",
    }


def neighbourhood_meters(meters: int, seed: int = 17) -> list[tuple[float, float, np.ndarray]]:
    """(lat, lng, FORECAST_DAYS + 1 days of net import) per meter: homes around Seoul of
    different sizes, 30 % with rooftop PV (net import goes negative at noon)."""
    rng = np.random.default_rng(seed)
    provider = SimulatedWeather(seed)
    slots = (FORECAST_DAYS + 1) * forecaster.SLOTS_PER_DAY
    out = []
    for i in range(meters):
        lat, lng = 37.45 + 0.2 * rng.random(), 126.85 + 0.3 * rng.random()
        weather = slot_weather(provider, lat=lat, lng=lng, start=FORECAST_START, slots=slots)
        net = household_wh(FORECAST_START, slots, weather, rng, scale=float(rng.uniform(0.5, 2)))
        if i % 10 < 3:
            net = net - pv_wh(slots, weather, rng, capacity_w=float(rng.choice([3e3, 5e3, 8e3])))
        out.append((lat, lng, net))
    return out


def forecast_figures() -> Iterator[dict[str, Any]]:
    """Forecast every meter as the API does (weather from the provider, backtest, fit,
    24 h ahead) and score it on the day after its history, against seasonal-naive."""
    meters = neighbourhood_meters(FORECAST_METERS)
    history_slots = FORECAST_DAYS * forecaster.SLOTS_PER_DAY
    provider = SimulatedWeather(17)
    model_error = naive_error = 0.0
    served: dict[str, int] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    forecasts, weathers = [], []
    for lat, lng, series in meters:
        weather = slot_weather(
            provider,
            lat=lat,
            lng=lng,
            start=FORECAST_START,
            slots=history_slots + forecaster.SLOTS_PER_DAY,
        )
        weathers.append(weather)
        forecasts.append(forecaster.forecast(series[:history_slots], FORECAST_START, weather))
    seconds, cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu
    yield from imperfect_weather(meters, weathers, history_slots)
    naive_wall = time.perf_counter()
    naives = [forecaster.seasonal_naive(s[:history_slots], 96) for _, _, s in meters]
    naive_seconds = time.perf_counter() - naive_wall
    for (_, _, series), result, naive in zip(meters, forecasts, naives, strict=True):
        actual = series[history_slots:]
        model_error += forecaster.accuracy(np.rint(result.values), actual).mae
        naive_error += forecaster.accuracy(naive, actual).mae
        served[result.model] = served.get(result.model, 0) + 1
    label = f"{FORECAST_METERS}_meters"
    yield {"metric": f"forecast_s_{label}", "value": round(seconds, 3), "unit": "s"}
    yield {"metric": f"forecast_cpu_s_{label}", "value": round(cpu_seconds, 3), "unit": "s"}
    yield {"metric": f"naive_forecast_s_{label}", "value": round(naive_seconds, 3), "unit": "s"}
    yield {"metric": "forecast_mae_wh", "value": round(model_error / len(meters), 1), "unit": "Wh"}
    yield {"metric": "naive_mae_wh", "value": round(naive_error / len(meters), 1), "unit": "Wh"}
    yield {
        "metric": "forecast_mae_ratio_vs_naive",
        "value": round(model_error / naive_error, 4),
        "unit": "ratio",
    }
    yield {
        "metric": "forecast_model_share",
        "value": round(served.get(forecaster.MODEL_NAME, 0) / len(meters), 3),
        "unit": "fraction served by the model (rest: seasonal-naive won the backtest)",
    }


def imperfect_weather(
    meters: list[tuple[float, float, np.ndarray]],
    weathers: list[dict[str, np.ndarray]],
    history_slots: int,
    sample: int = 200,
) -> Iterator[dict[str, Any]]:
    """The simulation's weather for tomorrow is exact; a real day-ahead forecast is not. Redo
    `sample` meters with tomorrow's weather perturbed (temperature ± 2 °C, irradiance ± 25 %,
    per hour) and report that ratio too."""
    rng = np.random.default_rng(99)
    model_error = naive_error = 0.0
    for (_, _, series), weather in zip(meters[:sample], weathers[:sample], strict=True):
        noisy = {k: v.copy() for k, v in weather.items()}
        hours = forecaster.SLOTS_PER_DAY // 4
        tomorrow = slice(history_slots, None)
        noisy["temperature_c"][tomorrow] += np.repeat(2.0 * rng.standard_normal(hours), 4)
        noisy["irradiance_w_m2"][tomorrow] *= np.clip(
            1 + np.repeat(0.25 * rng.standard_normal(hours), 4), 0, None
        )
        result = forecaster.forecast(series[:history_slots], FORECAST_START, noisy)
        actual = series[history_slots:]
        model_error += forecaster.accuracy(np.rint(result.values), actual).mae
        naive = forecaster.seasonal_naive(series[:history_slots], forecaster.SLOTS_PER_DAY)
        naive_error += forecaster.accuracy(naive, actual).mae
    yield {
        "metric": "forecast_mae_ratio_vs_naive_noisy_weather",
        "value": round(model_error / naive_error, 4),
        "unit": f"ratio ({min(sample, len(meters))} meters)",
    }

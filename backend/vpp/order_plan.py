"""Planning a VPP's orders, as pure functions: the rule of backend/vpp/trading.py from its
forecast, the battery headroom its schedule leaves and the prices per slot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from backend.market import orders as eip712
from backend.vpp.models import VppSchedule
from backend.vpp.trading_schemas import PlannedStatus, VppOrderPlan

SLOT = eip712.SLOT_SECONDS
SLOT_HOURS = SLOT / 3600


@dataclass(frozen=True)
class Battery:
    """What the headroom of one battery needs from the registry."""

    max_discharge_w: int
    min_soc_wh: int
    discharge_efficiency: float


def battery_headroom(
    battery: Battery, setpoints_w: list[int], soc_wh: list[int] | None
) -> list[int]:
    """Wh per slot the battery could still discharge beyond its schedule (≥ 0)."""
    found = []
    for slot, setpoint in enumerate(setpoints_w):
        power = max(battery.max_discharge_w - max(setpoint, 0), 0) * SLOT_HOURS
        stored = (soc_wh[slot] - battery.min_soc_wh) if soc_wh else 0
        energy = max(stored, 0) * battery.discharge_efficiency
        found.append(int(min(power, energy)))
    return found


def schedule_flexibility(schedule: VppSchedule, batteries: dict[str, Battery]) -> dict[int, int]:
    """Discharge headroom of the schedule's batteries per slot start (unix s)."""
    total: dict[int, int] = {}
    for plan in schedule.result.get("allocation", []):
        battery = batteries.get(plan["resourceId"])
        if battery is None:
            continue
        for n, wh in enumerate(battery_headroom(battery, plan["setpointsW"], plan.get("socWh"))):
            slot = schedule.start + n * schedule.slot_seconds
            total[slot] = total.get(slot, 0) + wh
    return total


def schedule_prices(schedule: VppSchedule | None) -> tuple[dict[int, int], dict[int, int]]:
    """The schedule's sell and buy price per slot start (as it was optimised with)."""
    if schedule is None:
        return {}, {}
    request = schedule.inputs.get("request", {})
    sell: dict[int, int] = {}
    buy: dict[int, int] = {}
    for name, into in (("sellPrice", sell), ("buyPrice", buy)):
        for n, price in enumerate(request.get(name) or []):
            into[schedule.start + n * schedule.slot_seconds] = int(price)
    return sell, buy


@dataclass(frozen=True)
class PlanInputs:
    forecast_start: int
    forecast_wh: list[int]
    flexibility: dict[int, int]  # slot start → Wh
    sell_price: dict[int, int]
    buy_price: dict[int, int]
    now: int  # chain time: only slots starting after it are traded
    traded: set[tuple[int, str]]  # (slot start, side) already ordered
    min_wh: int
    flex_share: float
    default_price: int
    block_slots: int = 1  # quarter hours per order (4: hour-long delivery periods)


def counted_flexibility(inputs: PlanInputs, start: int) -> int:
    """⌊flex_share · flexibility⌋ of the slot: the battery headroom its orders rely on."""
    return int(inputs.flex_share * inputs.flexibility.get(start, 0))


def slot_quantity(inputs: PlanInputs, start: int, position: int) -> int:
    """The slot's signed quantity under the rule: + to sell, − to buy. Both sides count the
    same share of the headroom: sold on top of a surplus, or discharged instead of buying
    part of a shortfall (with flex_share 0 a shortfall is bought whole)."""
    if position > 0:
        return position + counted_flexibility(inputs, start)
    if position < 0:
        return -max(-position - counted_flexibility(inputs, start), 0)
    return 0


def block_price(prices: dict[int, int], slots: list[int], default: int) -> int:
    """The mean of the slots' prices (the default where a slot has none), rounded."""
    return round(sum(prices.get(s) or default for s in slots) / len(slots))


def plan_orders(inputs: PlanInputs) -> list[VppOrderPlan]:
    """The orders of the module docstring's rule, in delivery order. With `block_slots` > 1
    the slots of each aligned block (4: the hour) are netted into one order for the block,
    traded only when every slot of the block is still open."""
    size = inputs.block_slots * SLOT
    blocks: dict[int, list[tuple[int, int]]] = {}
    for n, position in enumerate(inputs.forecast_wh):
        start = inputs.forecast_start + n * SLOT
        blocks.setdefault(start - start % size, []).append((start, position))
    plans = []
    for block_start, members in sorted(blocks.items()):
        slots = [start for start, _ in members]
        if len(members) < inputs.block_slots or min(slots) <= inputs.now:
            continue
        signed = sum(slot_quantity(inputs, start, position) for start, position in members)
        side: Literal["sell", "buy"] = "sell" if signed > 0 else "buy"
        prices = inputs.sell_price if side == "sell" else inputs.buy_price
        if abs(signed) < inputs.min_wh or (block_start, side) in inputs.traded:
            continue
        plans.append(
            VppOrderPlan(
                side=side,
                deliveryStart=block_start,
                deliveryEnd=block_start + size,
                quantityWh=abs(signed),
                price=block_price(prices, slots, inputs.default_price),
                forecastWh=sum(position for _, position in members),
                flexibilityWh=sum(inputs.flexibility.get(start, 0) for start in slots),
                status=PlannedStatus.PLANNED,
            )
        )
    return plans

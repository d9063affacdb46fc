"""Planning a VPP's orders, as pure functions: the rule of backend/vpp/trading.py from its
forecast, the battery headroom its schedule leaves and the prices per slot.

Headroom is sequential (`Headroom`): energy a battery discharges beyond its schedule in slot t
is gone from its store in t and every later slot, so an order relying on it lowers what later
slots may rely on. Orders are planned in delivery order and each commits, per battery and slot,
the headroom it relies on (`FlexPart`); commitments of orders already placed are passed in, so
no stored Wh is promised twice.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Literal

from backend.market import orders as eip712
from backend.vpp.models import VppSchedule
from backend.vpp.trading_schemas import FlexPart, PlannedStatus, VppOrderPlan

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
    """Wh per slot the battery could still discharge beyond its schedule (≥ 0), each slot on its
    own (`Headroom` couples the slots through the store)."""
    power, stored = battery_limits(battery, setpoints_w, soc_wh)
    return [max(min(p, s), 0) for p, s in zip(power, stored, strict=True)]


def battery_limits(
    battery: Battery, setpoints_w: list[int], soc_wh: list[int] | None
) -> tuple[list[int], list[int]]:
    """Per slot: the Wh the spare discharge power allows, and the Wh at the meter the store holds
    above its minimum at the slot's planned end ((SoC − min SoC)·η_discharge; 0 without SoC)."""
    power, stored = [], []
    for slot, setpoint in enumerate(setpoints_w):
        power.append(int(max(battery.max_discharge_w - max(setpoint, 0), 0) * SLOT_HOURS))
        above = (soc_wh[slot] - battery.min_soc_wh) if soc_wh else 0
        stored.append(int(max(above, 0) * battery.discharge_efficiency))
    return power, stored


@dataclass
class Headroom:
    """One battery's discharge headroom beyond its schedule, by slot start (unix s). Committing
    x Wh in slot t spends spare power in t and stored energy in t and every later slot, so

        available(t) = min(power_t − committed_t, min_{k ≥ t} stored_k − Σ_{j ≤ k} committed_j)

    `stored` empty: power-bounded only (a store the plan does not track)."""

    resource_id: str
    power: dict[int, int]
    stored: dict[int, int] = field(default_factory=dict)
    committed: dict[int, int] = field(default_factory=dict)
    _floor: dict[int, int] | None = field(default=None, repr=False, compare=False)

    def available(self, slot: int) -> int:
        if slot not in self.power:
            return 0
        spare = self.power[slot] - self.committed.get(slot, 0)
        if self.stored:
            spare = min(spare, self.floor().get(slot, spare))
        return max(spare, 0)

    def floor(self) -> dict[int, int]:
        """min over k ≥ t of stored_k − Σ_{j ≤ k} committed_j, per slot t (cached until the
        next commitment)."""
        if self._floor is None:
            drawn, cumulative = 0, {}
            for slot in sorted(self.stored.keys() | self.committed.keys()):
                drawn += self.committed.get(slot, 0)
                cumulative[slot] = drawn
            found, low = {}, None
            for slot in sorted(self.stored, reverse=True):
                left = self.stored[slot] - cumulative[slot]
                low = left if low is None else min(low, left)
                found[slot] = low
            self._floor = found
        return self._floor

    def commit(self, slot: int, wh: int) -> None:
        if wh > self.available(slot):
            raise ValueError(f"{self.resource_id}: {wh} Wh in slot {slot} exceeds the headroom")
        self.committed[slot] = self.committed.get(slot, 0) + wh
        self._floor = None

    def release(self, slot: int, wh: int) -> None:
        """Undo `commit(slot, wh)`."""
        self.committed[slot] -= wh
        self._floor = None


def schedule_headroom(
    schedule: VppSchedule,
    batteries: dict[str, Battery],
    committed: dict[str, dict[int, int]] | None = None,
) -> list[Headroom]:
    """The schedule's batteries' headroom, less what placed orders already committed
    (resource id → slot start → Wh)."""
    found = []
    for plan in schedule.result.get("allocation", []):
        battery = batteries.get(plan["resourceId"])
        if battery is None:
            continue
        power, stored = battery_limits(battery, plan["setpointsW"], plan.get("socWh"))
        slots = [schedule.start + n * schedule.slot_seconds for n in range(len(power))]
        found.append(
            Headroom(
                resource_id=plan["resourceId"],
                power=dict(zip(slots, power, strict=True)),
                stored=dict(zip(slots, stored, strict=True)),
                committed=dict((committed or {}).get(plan["resourceId"], {})),
            )
        )
    return found


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
    headroom: list[Headroom]  # the batteries', less what placed orders committed
    sell_price: dict[int, int]
    buy_price: dict[int, int]
    now: int  # chain time: only slots starting after it are traded
    traded: set[tuple[int, str]]  # (slot start, side) already ordered
    min_wh: int
    flex_share: float
    default_price: int
    block_slots: int = 1  # quarter hours per order (4: hour-long delivery periods)


def flexibility(headroom: list[Headroom], start: int) -> int:
    """The Wh all batteries could still discharge beyond the schedule in the slot."""
    return sum(h.available(start) for h in headroom)


def relied_wh(position: int, counted: int) -> int:
    """Of ⌊flex_share · flexibility⌋ (`counted`), what the slot's order relies on: all of it on
    top of a surplus, as much as covers a shortfall, none where the forecast is flat. The slot
    trades position + relied (+ sells, − buys): both sides count the same share of the
    headroom, sold on top of a surplus or discharged instead of buying part of a shortfall."""
    if position > 0:
        return counted
    if position < 0:
        return min(counted, -position)
    return 0


def split(headroom: list[Headroom], start: int, wh: int) -> list[FlexPart]:
    """Commit `wh` of the slot to the batteries, the roomiest first."""
    parts = []
    for battery in sorted(headroom, key=lambda h: (-h.available(start), h.resource_id)):
        take = min(wh, battery.available(start))
        if take > 0:
            battery.commit(start, take)
            parts.append(FlexPart(resourceId=battery.resource_id, slot=start, wh=take))
            wh -= take
    if wh:
        raise ValueError(f"{wh} Wh of slot {start} beyond the batteries' headroom")
    return parts


def block_price(prices: dict[int, int], slots: list[int], default: int) -> int:
    """The mean of the slots' prices (the default where a slot has none), rounded."""
    return round(sum(prices.get(s) or default for s in slots) / len(slots))


def plan_orders(inputs: PlanInputs) -> list[VppOrderPlan]:
    """The orders of the module docstring's rule, in delivery order. With `block_slots` > 1
    the slots of each aligned block (4: the hour) are netted into one order for the block,
    traded only when every slot of the block is still open. Each order commits the headroom it
    relies on (`flexSplit`) before later slots are planned; `inputs.headroom` is left as it is."""
    headroom = copy.deepcopy(inputs.headroom)
    by_id = {h.resource_id: h for h in headroom}
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
        flex: dict[int, int] = {}
        parts: list[FlexPart] = []  # committed slot by slot: the block's slots share the stores
        signed = 0
        for start, position in members:
            flex[start] = flexibility(headroom, start)
            relied = relied_wh(position, int(inputs.flex_share * flex[start]))
            parts += split(headroom, start, relied)
            signed += position + relied
        side: Literal["sell", "buy"] = "sell" if signed > 0 else "buy"
        prices = inputs.sell_price if side == "sell" else inputs.buy_price
        if abs(signed) < inputs.min_wh or (block_start, side) in inputs.traded:
            for part in parts:  # not traded: nothing relies on it
                by_id[part.resourceId].release(part.slot, part.wh)
            continue
        plans.append(
            VppOrderPlan(
                side=side,
                deliveryStart=block_start,
                deliveryEnd=block_start + size,
                quantityWh=abs(signed),
                price=block_price(prices, slots, inputs.default_price),
                forecastWh=sum(position for _, position in members),
                flexibilityWh=sum(flex.values()),
                flexWh=sum(part.wh for part in parts),
                flexSplit=parts,
                status=PlannedStatus.PLANNED,
            )
        )
    return plans

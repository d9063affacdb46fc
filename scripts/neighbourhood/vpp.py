"""The neighbourhood's VPP: the community battery and every second prosumer's home (its PV,
and in some homes a battery or an EV) are registered as DERs behind their meters and join a
VPP run by the aggregator, each owner consenting per resource through the API.

The devices report `output` (and the community battery its `soc`) to the telemetry store every
slot; a PV system reports what it feeds the grid (generation less the home's load), the
quantity the VPP can sell. A new neighbourhood backfills eight days of that telemetry so the
VPP's forecast has the week of history it needs. Once a simulated day (and at start) the
aggregator forecasts the VPP's next 24 h and optimises its schedule; every hour it places the
VPP's orders for the hours up to the hour after next (`POST /v1/vpp/{id}/orders` in hour-long
blocks, the periods the other agents trade). Members stop offering their own export (the VPP
sells it: settlement reads the VPP's delivery from their meters) and the community battery
keeps only its charging bids.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from backend.accounts.models import Account, Role
from backend.core.db import get_engine
from backend.resources.models import TelemetryMetric, TelemetrySample
from backend.resources.telemetry import Sample, record_samples
from scripts.neighbourhood.profiles import SLOT_SECONDS

if TYPE_CHECKING:
    from scripts.neighbourhood.simulator import Agent, Neighbourhood

log = logging.getLogger("gridledger.neighbourhood")

VPP_NAME = "Neighbourhood VPP"
HOUR = 3600
DAY = 86_400
BACKFILL_S = 8 * DAY
SELL_PRICE = 95_000  # per kWh the VPP asks
SLOTS = 96


def buy_price(slot: int) -> int:
    """The day's import price curve the aggregator optimises with (per kWh)."""
    hour = (slot % DAY) // HOUR
    if 17 <= hour <= 21:
        return 140_000
    return 80_000 if 10 <= hour <= 14 else 110_000


@dataclass
class Member:
    agent: Agent
    kind: str
    body: dict[str, Any]
    resource_id: str | None = None


@dataclass
class NeighbourhoodVpp:
    town: Neighbourhood
    vpp_id: str | None = None
    members: list[Member] = field(default_factory=list)
    forecast_day: int | None = None
    plan: dict[str, str] = field(default_factory=dict)  # forecastId, scheduleId of the day

    # ------------------------------------------------------------------- set-up

    def is_member(self, agent: Agent) -> bool:
        return any(m.agent is agent for m in self.members)

    def plan_members(self) -> None:
        """Who joins (decided from the agents alone, before anything is registered)."""
        area = "GL-SIM"
        battery = self.town.of_role("battery")[0]
        common = {"grid_area": area, "location": {"lat": 37.5665, "lng": 126.978}}
        self.members.append(
            Member(
                battery,
                "battery",
                {
                    **common,
                    "name": "community battery",
                    "kind": "battery",
                    "capacity_w": 15_000,
                    "energy_capacity_wh": self.town.battery.capacity_wh,
                    "charge_efficiency": 0.95,
                    "discharge_efficiency": 0.95,
                },
            )
        )
        for n, agent in enumerate(self.town.of_role("prosumer")):
            if n % 2:
                continue  # every second home (the silent meter's stays out)
            spot = {**common, "location": {"lat": 37.5665 + n * 0.001, "lng": 126.978}}
            self.members.append(
                Member(
                    agent,
                    "pv",
                    {
                        **spot,
                        "name": f"{agent.name} pv",
                        "kind": "pv",
                        "capacity_w": agent.solar.peak_w,
                    },
                )
            )
            if n % 4 == 0:
                self.members.append(
                    Member(
                        agent,
                        "battery",
                        {
                            **spot,
                            "name": f"{agent.name} battery",
                            "kind": "battery",
                            "capacity_w": 5_000,
                            "energy_capacity_wh": 13_500,
                            "charge_efficiency": 0.95,
                            "discharge_efficiency": 0.95,
                        },
                    )
                )
            if n % 6 == 2:
                self.members.append(
                    Member(
                        agent,
                        "ev_charger",
                        {
                            **spot,
                            "name": f"{agent.name} ev",
                            "kind": "ev_charger",
                            "capacity_w": 7_000,
                            "energy_capacity_wh": 60_000,
                        },
                    )
                )

    def setup(self) -> None:
        """Role, VPP, resources and consent; safe to repeat. Backfills telemetry once."""
        aggregator = self.town.of_role("aggregator")[0].participant
        with Session(get_engine()) as session:
            account = session.exec(
                select(Account).where(Account.address == aggregator.address.lower())
            ).one()
            account.roles = sorted({*account.roles, Role.AGGREGATOR.value})
            session.add(account)
            session.commit()
        me = aggregator.request("GET", "/v1/auth/me")["id"]
        mine = [
            v
            for v in aggregator.request("GET", "/v1/vpp")
            if v["name"] == VPP_NAME and v["aggregatorId"] == me
        ]
        if mine:
            self.vpp_id = mine[0]["vppId"]
        else:
            self.vpp_id = aggregator.request(
                "POST", "/v1/vpp", json={"name": VPP_NAME, "gridArea": "GL-SIM"}
            )["vppId"]
        owned: dict[str, dict[str, str]] = {}
        for member in self.members:
            participant = member.agent.participant
            if participant.name not in owned:
                owned[participant.name] = {
                    r["name"]: r["id"] for r in participant.request("GET", "/v1/resources")
                }
            rid = owned[participant.name].get(member.body["name"])
            if rid is None:
                rid = participant.request(
                    "POST", "/v1/resources", json={**member.body, "meter": member.agent.meter_id}
                )["id"]
            member.resource_id = rid
            participant.request(
                "POST",
                f"/v1/vpp/{self.vpp_id}/resources",
                ok=(409,),
                json={"resourceId": rid},
            )
        self.backfill()

    # ----------------------------------------------------------------- telemetry

    def output_w(self, member: Member, slot: int, *, past: bool = False) -> int:
        """What the member fed the grid for the VPP in the slot, W. The community battery
        reports its discharge (the VPP sells it, 6 kWh an hour 17-22 h as
        `Neighbourhood.battery_hour` runs it, also on the days before the simulation: `past`);
        its charging it still buys with its own bids, on its own account."""
        town = self.town
        if member.kind == "pv":
            agent = member.agent
            net = agent.solar.generation_wh(
                slot, seed=town.seed, household=agent.name
            ) - agent.home.consumption_wh(slot, seed=town.seed)
            return max(net, 0) * 4
        if member.agent.role == "battery":
            if past:
                return 6_000 if 17 <= (slot % DAY) // HOUR <= 21 else 0
            return town.battery.discharge_per_slot * 4
        return 0

    def samples(self, slot: int, *, past: bool = False) -> list[Sample]:
        found = []
        for member in self.members:
            if member.resource_id is None:
                continue
            rid = uuid_of(member.resource_id)
            found.append(
                Sample(
                    rid, TelemetryMetric.OUTPUT, slot, self.output_w(member, slot, past=past), "W"
                )
            )
            if member.agent.role == "battery":
                found.append(Sample(rid, TelemetryMetric.SOC, slot, self.town.battery.soc_wh, "Wh"))
        return found

    def record(self, samples: list[Sample]) -> None:
        with Session(get_engine()) as session:
            record_samples(session, samples)
            session.commit()

    def backfill(self) -> None:
        """Eight days of past telemetry for a VPP that has none (a new neighbourhood)."""
        now = self.town.clock.now() // SLOT_SECONDS * SLOT_SECONDS
        ids = [uuid_of(m.resource_id) for m in self.members if m.resource_id]
        with Session(get_engine()) as session:
            seen = session.exec(
                select(TelemetrySample.id).where(col(TelemetrySample.resource_id).in_(ids)).limit(1)
            ).first()
        if seen is not None:
            return
        samples: list[Sample] = []
        for slot in range(now - BACKFILL_S, now, SLOT_SECONDS):
            samples.extend(
                s for s in self.samples(slot, past=True) if s.metric == TelemetryMetric.OUTPUT
            )
        self.record(samples)
        log.info("VPP: %d telemetry samples backfilled for %d resources", len(samples), len(ids))

    def report(self, slot: int) -> None:
        """Each member's telemetry for the slot that just ended."""
        self.record(self.samples(slot))

    # ------------------------------------------------------------------- trading

    def plan_day(self, start: int) -> None:
        """The aggregator's daily run: forecast the next 24 h, optimise the schedule."""
        aggregator = self.town.of_role("aggregator")[0].participant
        forecast = aggregator.request(
            "POST",
            "/v1/energy/forecast",
            json={"target": "vpp", "targetId": self.vpp_id, "start": iso(start)},
        )
        pv = [max(int(p["value"]), 0) for p in forecast["values"]][:SLOTS]
        pv += [0] * (SLOTS - len(pv))
        schedule = aggregator.request(
            "POST",
            f"/v1/vpp/{self.vpp_id}/optimize",
            json={
                "start": iso(start),
                "buyPrice": [buy_price(start + n * SLOT_SECONDS) for n in range(SLOTS)],
                "sellPrice": [SELL_PRICE] * SLOTS,
                "pvWh": pv,
            },
        )
        self.forecast_day = start // DAY
        # trade on these (the beat's wall-clock refit must not replace them in simulated time)
        self.plan = {"forecastId": forecast["forecastId"], "scheduleId": schedule["scheduleId"]}
        log.info(
            "VPP: forecast %s (model %s) and schedule for %s",
            forecast["forecastId"],
            forecast["model"],
            iso(start),
        )

    def trade(self, hour_start: int, until: int) -> int:
        """Plan the day if due, then place the VPP's orders for slots before `until`."""
        if self.forecast_day != hour_start // DAY:
            self.plan_day(hour_start)
        aggregator = self.town.of_role("aggregator")[0].participant
        # hourly, like the other agents; the simulated batteries do not follow setpoints (no
        # downlink here), so none of their headroom is offered
        result = aggregator.request(
            "POST",
            f"/v1/vpp/{self.vpp_id}/orders",
            json={"deliveryBefore": until, "blockSlots": 4, "flexShare": 0, **self.plan},
        )
        return sum(1 for o in result["orders"] if o["status"] == "placed")


def uuid_of(value: str | None) -> uuid.UUID:
    return uuid.UUID(str(value))


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

"""The neighbourhood's VPP: the community battery and every second prosumer's home (its PV,
and in some homes a battery or an EV) are registered as DERs behind their meters and join a
VPP run by the aggregator, each owner consenting per resource through the API.

A PV system reports what it feeds the grid (generation less the home's load), the quantity
the VPP can sell, to the telemetry store every slot. The storage members (the community
battery, the home batteries and EVs) are simulated devices on the MQTT broker
(backend/vpp/simulated_device.py): they receive the schedule the aggregator dispatches,
acknowledge it, follow it in most slots (the battery 90 %, an EV 75 %, seeded per slot: the
rest they idle) and publish `output` and `soc`; what they do is also what their meters
measure: the community battery's, and in each home a storage meter of its own, never the PV
device's meter (REC issuance certifies that meter's export as solar, and battery energy may
come from the grid). Without a broker they stay as before: the community battery runs on its
own bids, reported straight to the store, the home storage idles.

A new neighbourhood backfills eight days of telemetry, and of its members' meters' signed
readings (history.py), so the VPP's forecasts (output, generation, demand) have the week of
history they need from the first day. Once a simulated day (and at start) the aggregator
forecasts the VPP's next 24 h, optimises its schedule and dispatches it to the devices; every
hour it places the VPP's orders for the hours up to the hour after next (`POST
/v1/vpp/{id}/orders` in hour-long blocks, the periods the other agents trade), relying on half
the batteries' headroom beyond the schedule when devices run; every slot the fills of those
orders are patched into the devices' schedules (backend/vpp/flex_delivery.py). Members stop
offering their own export (the VPP sells it: settlement reads the VPP's delivery from their
meters) and the community battery keeps only its charging bids.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from backend.accounts.models import Account, Role
from backend.core.db import get_engine
from backend.resources.models import DerResource, TelemetryMetric, TelemetrySample
from backend.resources.telemetry import Sample, record_samples
from backend.vpp.flex_delivery import deliver_flex
from backend.vpp.simulated_device import SimulatedDevice
from scripts.neighbourhood.history import BACKFILL_S, community_battery_wh
from scripts.neighbourhood.profiles import SLOT_SECONDS

if TYPE_CHECKING:
    from scripts.neighbourhood.simulator import Agent, Neighbourhood

log = logging.getLogger("gridledger.neighbourhood")

VPP_NAME = "Neighbourhood VPP"
HOUR = 3600
DAY = 86_400
SELL_PRICE = 95_000  # per kWh the VPP asks
FLEX_SHARE = 0.5  # of the batteries' headroom beyond the schedule, traded (devices deliver it)
SLOTS = 96
FOLLOW = {"battery": 0.9, "ev_charger": 0.75}  # share of slots a storage device follows
DEVICE_ERRORS = (OSError, RuntimeError, ValueError, TimeoutError)  # paho: not connected, full


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
    device: SimulatedDevice | None = None  # storage on the broker, following the schedule


@dataclass
class NeighbourhoodVpp:
    town: Neighbourhood
    vpp_id: str | None = None
    members: list[Member] = field(default_factory=list)
    forecast_day: int | None = None
    plan: dict[str, str] = field(default_factory=dict)  # forecastId, scheduleId of the day
    fed: dict[str, int] = field(default_factory=dict)  # agent → Wh its devices fed (− drew)

    # ------------------------------------------------------------------- set-up

    def is_member(self, agent: Agent) -> bool:
        return any(m.agent is agent for m in self.members)

    def storage_w(self, agent: Agent) -> int:
        """The rated power of the agent's storage members (what its storage meter may export)."""
        return sum(
            int(m.body["capacity_w"]) for m in self.members if m.agent is agent and m.kind in FOLLOW
        )

    def meter_of(self, member: Member) -> str | None:
        """The meter a member sits behind: a home's storage behind the home's storage meter."""
        agent = member.agent
        if member.kind in FOLLOW and agent.storage_meter_id is not None:
            return agent.storage_meter_id
        return agent.meter_id

    def drives(self, agent: Agent) -> bool:
        """Whether a simulated device runs (some of) the agent's storage."""
        return any(m.agent is agent and m.device is not None for m in self.members)

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
        owned: dict[str, dict[str, dict[str, Any]]] = {}
        for member in self.members:
            participant = member.agent.participant
            if participant.name not in owned:
                owned[participant.name] = {
                    r["name"]: r for r in participant.request("GET", "/v1/resources")
                }
            meter = self.meter_of(member)
            found = owned[participant.name].get(member.body["name"])
            if found is None:
                rid = participant.request(
                    "POST", "/v1/resources", json={**member.body, "meter": meter}
                )["id"]
            else:
                rid = found["id"]
                if str(found["meter_id"]).lower() != str(meter).lower():  # an older run's
                    participant.request("PATCH", f"/v1/resources/{rid}", json={"meter": meter})
            member.resource_id = rid
            participant.request(
                "POST",
                f"/v1/vpp/{self.vpp_id}/resources",
                ok=(409,),
                json={"resourceId": rid},
            )
        self.backfill()
        self.start_devices()

    # ------------------------------------------------------------------- devices

    def start_devices(self) -> None:
        """A simulated device per storage member on the meters' broker (none without one)."""
        settings = self.town.settings
        if self.town.publisher is None:
            return
        login: dict[str, Any] = {}
        if settings.mqtt_username:
            login = {
                "username": settings.mqtt_username,
                "password": settings.mqtt_password.get_secret_value(),
            }
        with Session(get_engine()) as session:
            for member in self.members:
                if member.kind not in FOLLOW or member.resource_id is None or member.device:
                    continue
                resource = session.get(DerResource, uuid_of(member.resource_id))
                if resource is None:
                    continue
                device = SimulatedDevice.for_resource(
                    settings,
                    resource,
                    follow_probability=FOLLOW[member.kind],
                    seed=self.town.seed,
                    **login,
                )
                if device.soc_wh is None:  # never reported: the community battery's state, or empty
                    device.soc_wh = (
                        self.town.battery.soc_wh if member.agent.role == "battery" else 0
                    )
                if member.agent.role == "battery":
                    self.town.battery.soc_wh = device.soc_wh  # a resumed run goes on from its last
                try:
                    member.device = device.start()
                except DEVICE_ERRORS as exc:
                    log.warning("VPP: device %s did not connect (%s)", member.resource_id, exc)
                    device.stop()
        started = sum(1 for m in self.members if m.device)
        log.info("VPP: %d storage devices follow the schedule over MQTT", started)

    def stop_devices(self) -> None:
        for member in self.members:
            if member.device is not None:
                member.device.stop()
                member.device = None

    def run_devices(self, slot: int) -> None:
        """Each device does the slot's part of its schedule (or not) and publishes it; the
        community battery's meter and the homes' storage meters measure it (`fed`)."""
        self.fed = {}
        at = slot + SLOT_SECONDS - 1  # inside the slot, one slot after the previous report
        for member in self.members:
            device = member.device
            if device is None:
                continue
            if device.last_report is None:
                device.last_report = at - SLOT_SECONDS
            try:
                power = device.report(at)
            except DEVICE_ERRORS as exc:  # the broker is away: the device idles this slot
                log.warning("VPP: device %s could not report (%s)", member.resource_id, exc)
                power = 0
            wh = round(power * SLOT_SECONDS / HOUR)
            name = member.agent.name
            self.fed[name] = self.fed.get(name, 0) + wh
            if member.agent.role == "battery":
                battery = self.town.battery
                battery.charge_per_slot, battery.discharge_per_slot = max(-wh, 0), max(wh, 0)
                battery.soc_wh = device.soc_wh or 0

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
                return community_battery_wh(slot)[1] * HOUR // SLOT_SECONDS
            return town.battery.discharge_per_slot * 4
        return 0

    def samples(self, slot: int, *, past: bool = False) -> list[Sample]:
        found = []
        for member in self.members:
            if member.resource_id is None or member.device is not None:  # it publishes its own
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
                select(TelemetrySample.resource_id)
                .where(col(TelemetrySample.resource_id).in_(ids))
                .limit(1)
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
        """Each member's telemetry for the slot that just ended (devices over MQTT)."""
        self.run_devices(slot)
        self.record(self.samples(slot))

    # ------------------------------------------------------------------- trading

    def plan_day(self, start: int) -> None:
        """The aggregator's daily run: forecast the next 24 h (the VPP's output, which it trades
        on; its PV's, which the schedule takes as generation; its homes' demand, from the meters'
        week of history), optimise the schedule and dispatch it to the devices."""
        aggregator = self.town.of_role("aggregator")[0].participant

        def forecast(target: str, *, ok: tuple[int, ...] = ()) -> dict[str, Any]:
            found: dict[str, Any] = aggregator.request(
                "POST",
                "/v1/energy/forecast",
                ok=ok,
                json={"target": target, "targetId": self.vpp_id, "start": iso(start)},
            )
            return found

        def day(target: str) -> list[int] | None:
            """The day's Wh per slot (≥ 0); None while the history is too short (422)."""
            found = forecast(target, ok=(422,))
            if "values" not in found:
                return None
            wh = [max(int(p["value"]), 0) for p in found["values"]][:SLOTS]
            return wh + [0] * (SLOTS - len(wh))

        output = forecast("vpp")  # the backfill gives the VPP's output its week
        pv, demand = day("vppGeneration"), day("vppDemand")
        schedule = aggregator.request(
            "POST",
            f"/v1/vpp/{self.vpp_id}/optimize",
            json={
                "start": iso(start),
                "buyPrice": [buy_price(start + n * SLOT_SECONDS) for n in range(SLOTS)],
                "sellPrice": [SELL_PRICE] * SLOTS,
                "pvWh": pv,
                "demandWh": demand,
            },
        )
        self.forecast_day = start // DAY
        # trade on these (the beat's wall-clock refit must not replace them in simulated time)
        self.plan = {"forecastId": output["forecastId"], "scheduleId": schedule["scheduleId"]}
        if any(m.device for m in self.members) and schedule["status"] == "completed":
            queued = aggregator.request(
                "POST", f"/v1/vpp/{self.vpp_id}/schedule/{schedule['scheduleId']}/dispatch"
            )
            log.info("VPP: %d commands queued for the devices", len(queued["commands"]))
        log.info(
            "VPP: forecast %s (model %s), schedule for %s (demand %s)",
            output["forecastId"],
            output["model"],
            iso(start),
            "forecast" if demand else "not yet forecast",
        )

    def trade(self, hour_start: int, until: int) -> int:
        """Plan the day if due, then place the VPP's orders for slots before `until`."""
        if self.forecast_day != hour_start // DAY:
            self.plan_day(hour_start)
        aggregator = self.town.of_role("aggregator")[0].participant
        # hourly, like the other agents; with devices on the broker half the batteries'
        # headroom beyond the schedule is traded too, and `deliver` patches it into their
        # schedules as the orders fill; without devices nothing would deliver it: none
        share = FLEX_SHARE if any(m.device for m in self.members) else 0
        result = aggregator.request(
            "POST",
            f"/v1/vpp/{self.vpp_id}/orders",
            json={"deliveryBefore": until, "blockSlots": 4, "flexShare": share, **self.plan},
        )
        return sum(1 for o in result["orders"] if o["status"] == "placed")

    def deliver(self, now: int) -> int:
        """The beat's `vpp.deliver_flex` sweep, run every simulated slot (the beat's wall-clock
        minute is a quarter of a simulated day): fills on orders relying on headroom become
        schedule patches the dispatcher sends before the devices' next slot. Patches made."""
        if not any(m.device for m in self.members):
            return 0
        try:
            with Session(get_engine()) as session:
                return deliver_flex(session, self.town.settings, now).patches
        except OperationalError as exc:  # the database is away: the next slot's sweep catches up
            log.warning("VPP: flexibility patches postponed (%s)", exc)
            return 0


def uuid_of(value: str | None) -> uuid.UUID:
    return uuid.UUID(str(value))


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

"""A simulated DER on the MQTT broker: what tests and the `make run` neighbourhood plug in
where a real battery, EV charger or heat pump would be.

It subscribes (QoS 1) to its own `…/command` and `…/config` topics, acknowledges each command
on its `…/status` topic (backend/vpp/downlink.py has the shapes), keeps its schedules (the
newest covering a moment rules it: tomorrow's plan, received today, does not end today's) and
the latest setpoint, and `report(at)` publishes what it does at that moment: `output` (W) and, for
storage, `soc` (Wh, integrated since the previous report, within its limits). With
`follow_probability` below 1 it ignores its schedule in some slots (outputs 0 W there; drawn
per slot from `seed`, so a run can be replayed); with `ack_probability` below 1 it leaves some
commands unacknowledged, which the dispatcher marks late.

Entry point: `SimulatedDevice.for_resource(settings, resource, ...)`, then `start()`,
`report(at)` as often as the simulation likes, `stop()`; `python -m backend.vpp.simulated_device
RESOURCE_ID...` runs devices in real time, reporting every `--every` seconds.
"""

from __future__ import annotations

import argparse
import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import paho.mqtt.client as mqtt
from sqlmodel import Session

from backend.core.config import Settings, get_settings
from backend.core.tls import secure_mqtt
from backend.resources.models import DerResource
from backend.resources.thing_description import topic as resource_topic
from backend.vpp.downlink import ACCEPTED, ACK, REJECTED, iso

log = logging.getLogger("gridledger.simulated_device")
KEPT_SCHEDULES = 4  # today's, tomorrow's and a re-plan or two


@dataclass
class SimulatedDevice:
    settings: Settings
    resource_id: uuid.UUID
    topic_prefix: str  # {root}/{gridArea}/{deviceType}/{resourceId}
    max_charge_w: int
    max_discharge_w: int
    energy_capacity_wh: int | None = None
    soc_wh: int | None = None
    charge_efficiency: float = 1.0
    discharge_efficiency: float = 1.0
    follow_probability: float = 1.0
    ack_probability: float = 1.0
    seed: int = 0
    username: str | None = None  # the device's broker login (its resource id), if the broker asks
    password: str | None = None
    schedules: list[tuple[int, int, list[int]]] = field(default_factory=list)  # newest last:
    # start (unix s), slot s, setpoints
    setpoint: tuple[int, int] | None = None  # power W, until (unix s)
    received: list[dict[str, object]] = field(default_factory=list)  # commands, in order
    last_report: int | None = None

    @classmethod
    def for_resource(
        cls, settings: Settings, resource: DerResource, **options: object
    ) -> SimulatedDevice:
        prefix = resource_topic(settings, resource, "x").rsplit("/", 1)[0]
        return cls(
            settings=settings,
            resource_id=resource.id,
            topic_prefix=prefix,
            max_charge_w=resource.max_charge_w,
            max_discharge_w=resource.max_discharge_w,
            energy_capacity_wh=resource.energy_capacity_wh,
            soc_wh=resource.soc_wh if resource.soc_wh is not None else resource.min_soc_wh,
            charge_efficiency=resource.charge_efficiency,
            discharge_efficiency=resource.discharge_efficiency,
            **options,  # type: ignore[arg-type]
        )

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.commands = threading.Condition(self.lock)
        self.rng = random.Random(f"{self.seed}:{self.resource_id}")
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"gl-sim-{self.resource_id.hex[:12]}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        if self.username:
            client.username_pw_set(self.username, self.password)
        secure_mqtt(client, self.settings)
        client.on_connect = lambda c, *_: c.subscribe(
            [
                (f"{self.topic_prefix}/command", mqtt.SubscribeOptions(qos=1)),
                (f"{self.topic_prefix}/config", mqtt.SubscribeOptions(qos=1)),
            ]
        )
        client.on_subscribe = lambda *_: self.subscribed.set()
        client.on_message = self.on_message
        self.client = client

    # ------------------------------------------------------------------ downlink

    def on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            command = orjson.loads(message.payload)
            command_id = str(command["commandId"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("unreadable command on %s", message.topic)
            return
        result, detail = ACCEPTED, None
        try:
            self.apply(command)
        except (KeyError, TypeError, ValueError) as exc:
            result, detail = REJECTED, f"cannot apply: {exc}"[:200]
        with self.commands:
            self.received.append(command)
            self.commands.notify_all()
        if self.rng.random() < self.ack_probability:
            ack: dict[str, object] = {
                "timestamp": iso(datetime.now(UTC)),
                "value": ACK,
                "commandId": command_id,
                "result": result,
            }
            if detail:
                ack["detail"] = detail
            client.publish(f"{self.topic_prefix}/status", orjson.dumps(ack), qos=1)

    def apply(self, command: dict[str, object]) -> None:
        kind = command["type"]
        if kind == "schedule":
            start = _unix(str(command["start"]))
            setpoints = [int(v) for v in command["setpointsW"]]  # type: ignore[attr-defined]
            slot_s = int(command["slotSeconds"])  # type: ignore[call-overload]
            with self.lock:
                self.schedules = [
                    *self.schedules[-(KEPT_SCHEDULES - 1) :],
                    (start, slot_s, setpoints),
                ]
        elif kind == "setpoint":
            with self.lock:
                self.setpoint = (int(command["powerW"]), _unix(str(command["until"])))  # type: ignore[call-overload]
        elif kind == "config":
            with self.lock:
                self.max_charge_w = int(command["maxChargeW"])  # type: ignore[call-overload]
                self.max_discharge_w = int(command["maxDischargeW"])  # type: ignore[call-overload]
        else:
            raise ValueError(f"unknown command type {kind!r}")

    def wait_for_commands(self, count: int, timeout_s: float = 10) -> bool:
        with self.commands:
            return self.commands.wait_for(lambda: len(self.received) >= count, timeout_s)

    # ------------------------------------------------------------------ behaviour

    def follows(self, slot_start: int) -> bool:
        """Whether the device follows its schedule in the slot starting at `slot_start`
        (the same answer every time it is asked)."""
        if self.follow_probability >= 1:
            return True
        draw = random.Random(f"{self.seed}:{self.resource_id}:{slot_start}").random()
        return draw < self.follow_probability

    def target_w(self, at: int) -> int:
        """What the device is asked to do at `at`: a live setpoint, else its schedule's slot."""
        with self.lock:
            if self.setpoint is not None and at < self.setpoint[1]:
                return self.setpoint[0]
            schedules = list(self.schedules)
        for start, slot_s, setpoints in reversed(schedules):
            index = (at - start) // slot_s
            if 0 <= index < len(setpoints):
                return setpoints[index] if self.follows(start + index * slot_s) else 0
        return 0

    def output_w(self, at: int) -> int:
        """The target within the device's limits and its state of charge."""
        power = max(-self.max_charge_w, min(self.max_discharge_w, self.target_w(at)))
        if self.energy_capacity_wh is None or self.soc_wh is None or self.last_report is None:
            return power
        hours = max(at - self.last_report, 0) / 3600 or 1 / 3600
        if power > 0:  # discharging: the store loses power / efficiency
            power = min(power, int(self.soc_wh * self.discharge_efficiency / hours))
        elif power < 0:
            room = self.energy_capacity_wh - self.soc_wh
            power = -min(-power, int(room / self.charge_efficiency / hours))
        return power

    def report(self, at: int | None = None) -> int:
        """Publish output (and SoC) at `at` (unix s, default now); the output in W."""
        at = int(time.time()) if at is None else at
        power = self.output_w(at)
        if self.soc_wh is not None and self.energy_capacity_wh and self.last_report is not None:
            hours = max(at - self.last_report, 0) / 3600
            change = -power * hours
            change *= self.charge_efficiency if change > 0 else 1 / self.discharge_efficiency
            self.soc_wh = max(0, min(self.energy_capacity_wh, round(self.soc_wh + change)))
        self.last_report = at
        stamp = iso(datetime.fromtimestamp(at, UTC))
        infos = [
            self.client.publish(
                f"{self.topic_prefix}/output",
                orjson.dumps({"timestamp": stamp, "value": power, "unit": "W"}),
                qos=1,
            )
        ]
        if self.soc_wh is not None and self.energy_capacity_wh:
            infos.append(
                self.client.publish(
                    f"{self.topic_prefix}/soc",
                    orjson.dumps({"timestamp": stamp, "value": self.soc_wh, "unit": "Wh"}),
                    qos=1,
                )
            )
        for info in infos:
            info.wait_for_publish(10)
        return power

    # ------------------------------------------------------------------ connection

    def start(self, timeout_s: float = 10) -> SimulatedDevice:
        self.client.connect(self.settings.mqtt_host, self.settings.mqtt_broker_port, keepalive=30)
        self.client.loop_start()
        if not self.subscribed.wait(timeout_s):
            raise TimeoutError(f"device {self.resource_id}: subscription not acknowledged")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _unix(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m backend.vpp.simulated_device")
    parser.add_argument("resource_ids", nargs="+", type=uuid.UUID)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between reports")
    parser.add_argument("--follow", type=float, default=0.9, help="probability of following")
    parser.add_argument("--ack", type=float, default=1.0, help="probability of acknowledging")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    settings = get_settings()
    from backend.core.db import make_engine

    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        resources = [session.get(DerResource, rid) for rid in options.resource_ids]
    devices = [
        SimulatedDevice.for_resource(
            settings,
            resource,
            follow_probability=options.follow,
            ack_probability=options.ack,
            seed=options.seed,
        ).start()
        for resource in resources
        if resource is not None
    ]
    try:
        while True:
            for device in devices:
                device.report()
            time.sleep(options.every)
    except KeyboardInterrupt:
        pass
    finally:
        for device in devices:
            device.stop()
        engine.dispose()


if __name__ == "__main__":
    main()

"""`make bench BENCH=vpp_dispatch`: a day's schedule down to N simulated devices on the real
Mosquitto and PostgreSQL, until every command is acknowledged and recorded — against the bare
broker round trip of the same messages in the same run (publish at QoS 1, the device answers
on its status topic, no database, no dispatcher).

Figures: `dispatch_s_<N>_devices` (queue committed → every command `acked`),
`dispatch_acked_per_s`, `mqtt_round_trip_s_<N>_devices` (the baseline) and
`dispatch_ratio_vs_mqtt` (how much the bookkeeping costs: dispatcher rounds, one transaction per
round). Needs Mosquitto on `GRIDLEDGER_MQTT_HOST`:1883.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from sqlmodel import Session, col, func, select

from backend.accounts.models import Account
from backend.core.config import Settings
from backend.core.db import make_engine
from backend.core.tls import service_mqtt_client
from backend.meters.schemas import MeterCreate, MeterKind
from backend.meters.services import register_meter
from backend.resources.models import DerResource, ResourceKind
from backend.resources.schemas import ResourceCreate
from backend.resources.services import register_resource
from backend.vpp import downlink
from backend.vpp.dispatcher import Dispatcher
from backend.vpp.models import CommandState, DispatchCommand, Vpp, VppMembership, VppSchedule
from backend.vpp.simulated_device import SimulatedDevice
from bench._database import scratch_schema

DEVICES = 50
START = 1_796_126_400


def world(session: Session, devices: int) -> tuple[VppSchedule, list[DerResource]]:
    """An aggregator's VPP of `devices` home batteries and a completed schedule for them."""
    owner = Account(email="owner@bench.example", address="0x" + "aa" * 20)
    aggregator = Account(
        email="aggregator@bench.example", address="0x" + "bb" * 20, roles=["aggregator"]
    )
    session.add_all([owner, aggregator])
    session.flush()
    meter = register_meter(
        session, owner, MeterCreate(name="meter:bench", kind=MeterKind.BOTH, capacity_w=10**6)
    )
    vpp = Vpp(name="bench VPP", aggregator_id=aggregator.id)
    session.add(vpp)
    batteries = []
    for index in range(devices):
        battery = register_resource(
            session,
            owner,
            ResourceCreate(
                name=f"battery {index}",
                kind=ResourceKind.BATTERY,
                meter=meter.meter_id,
                grid_area="KR-SE-001",
                capacity_w=5_000,
                energy_capacity_wh=13_500,
            ),
        )
        session.add(VppMembership(vpp_id=vpp.id, resource_id=battery.id, consented_by=owner.id))
        batteries.append(battery)
    allocation = [
        {"resourceId": str(b.id), "type": b.kind, "setpointsW": [1_000] * 96} for b in batteries
    ]
    schedule = VppSchedule(
        vpp_id=vpp.id,
        requested_by=aggregator.id,
        start=START,
        status="optimal",
        cost=0,
        inputs={},
        result={"status": "completed", "allocation": allocation},
    )
    session.add(schedule)
    session.commit()
    return schedule, batteries


def acked(engine: Any) -> int:
    with Session(engine) as session:
        return int(
            session.exec(
                select(func.count())
                .select_from(DispatchCommand)
                .where(col(DispatchCommand.state) == CommandState.ACKED.value)
            ).one()
        )


def wait(condition: Any, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark's messages did not all arrive")
        time.sleep(0.01)


def mqtt_round_trip(settings: Settings, commands: list[tuple[str, dict[str, Any]]]) -> float:
    """Seconds to publish the commands at QoS 1 and hear every device's answer (no database)."""
    answers: list[str] = []
    heard = threading.Event()
    listener = service_mqtt_client(settings, f"gl-bench-listen-{uuid.uuid4().hex[:8]}")
    listener.on_subscribe = lambda *_: heard.set()
    listener.on_message = lambda c, u, m: answers.append(m.topic)
    listener.connect(settings.mqtt_host, settings.mqtt_broker_port)
    listener.loop_start()
    listener.subscribe(f"{settings.mqtt_topic_root}/+/+/+/status", qos=1)
    heard.wait(10)
    publisher = service_mqtt_client(settings, f"gl-bench-pub-{uuid.uuid4().hex[:8]}")
    publisher.connect(settings.mqtt_host, settings.mqtt_broker_port)
    publisher.loop_start()
    started = time.perf_counter()
    infos = [publisher.publish(topic, orjson.dumps(body), qos=1) for topic, body in commands]
    for info in infos:
        info.wait_for_publish(30)
    wait(lambda: len(answers) >= len(commands))
    seconds = time.perf_counter() - started
    for client in (publisher, listener):
        client.disconnect()
        client.loop_stop()
    return seconds


def run(devices: int = DEVICES) -> Iterator[dict[str, Any]]:
    root = f"energy-cloud-bench-{uuid.uuid4().hex[:8]}"
    with scratch_schema() as url:
        settings = Settings(
            _env_file=None, database_url=url, mqtt_topic_root=root, vpp_dispatch_poll_s=0.05
        )
        engine = make_engine(url)
        with Session(engine) as session:
            schedule, batteries = world(session, devices)
            schedule_id = schedule.id
            simulated = [SimulatedDevice.for_resource(settings, b).start() for b in batteries]
            baseline = [
                (c.topic, c.payload) for c in downlink.queue_schedule(session, settings, schedule)
            ]
            session.rollback()  # the baseline's messages only: nothing queued yet
        baseline_s = mqtt_round_trip(settings, baseline)
        dispatcher_id = f"gl-bench-{uuid.uuid4().hex[:8]}"
        dispatcher = Dispatcher(settings=settings, client_id=dispatcher_id)
        thread = threading.Thread(target=dispatcher.run, daemon=True)
        thread.start()
        dispatcher.subscribed.wait(10)
        try:
            with Session(engine) as session:
                started = time.perf_counter()
                stored = session.get(VppSchedule, schedule_id)
                if stored is None:
                    raise RuntimeError("the benchmark's schedule vanished")
                count = len(downlink.queue_schedule(session, settings, stored))
                session.commit()
            wait(lambda: acked(engine) >= count)
            dispatch_s = time.perf_counter() - started
        finally:
            dispatcher.stopped.set()
            thread.join(10)
            for device in simulated:
                device.stop()
            forget(settings, dispatcher_id)
            engine.dispose()
    yield {"metric": f"dispatch_s_{devices}_devices", "value": round(dispatch_s, 3), "unit": "s"}
    yield {"metric": "dispatch_acked_per_s", "value": round(count / dispatch_s, 1), "unit": "1/s"}
    yield {
        "metric": f"mqtt_round_trip_s_{devices}_devices",
        "value": round(baseline_s, 3),
        "unit": "s",
    }
    ratio = round(dispatch_s / baseline_s, 2)
    yield {"metric": "dispatch_ratio_vs_mqtt", "value": ratio, "unit": "ratio"}


def forget(settings: Settings, client_id: str) -> None:
    """Drop the dispatcher's persistent session on the broker."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    client.connect(settings.mqtt_host, settings.mqtt_broker_port, clean_start=True)
    client.disconnect()

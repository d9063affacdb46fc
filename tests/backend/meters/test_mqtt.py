"""MQTT ingestion through the real Mosquitto broker at 127.0.0.1:1883."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from sqlmodel import Session, func, select

from backend.accounts.models import Account
from backend.chain.anvil import free_port
from backend.core.config import PROJECT_ROOT, Settings
from backend.core.db import make_engine
from backend.deadletters.models import DeadLetter
from backend.meters.models import MeterReading
from backend.meters.mqtt import MessageRejected, StoreUnavailable, Subscriber, reading_from_message
from backend.meters.trust import ReadingDomain
from backend.meters.validation import iso
from backend.resources.models import DerResource, TelemetrySample
from tests.fixtures.anvil import chain_clock_ahead
from tests.fixtures.meters import (
    NOW,
    TEST_CHAIN_ID,
    TEST_REGISTRY,
    approve,
    meter_key,
    seed_meters,
    signed,
    write_deployment,
)
from tests.fixtures.mqtt import stop_when_handled
from tests.fixtures.resources import add_resource
from tests.fixtures.services import require_service


def test_topic_and_payload_mapping():
    reading = reading_from_message(
        "energy-cloud/seoul/solar-panel/SP-001/generation",
        b'{"timestamp": "2025-12-25T10:30:00Z", "value": 420, "unit": "Wh"}',
        "energy-cloud",
    )
    assert reading == {
        "timestamp": "2025-12-25T10:30:00Z",
        "exportWh": 420,
        "unit": "Wh",
        "meterId": "SP-001",
    }
    assert (
        reading_from_message("energy-cloud/seoul/battery/BAT-001/soc", b"{}", "energy-cloud")
        is None
    )
    with pytest.raises(MessageRejected, match="differs from the topic"):
        reading_from_message(
            "energy-cloud/a/b/SP-001/reading", b'{"meterId": "SP-002"}', "energy-cloud"
        )
    with pytest.raises(MessageRejected, match="invalid JSON"):
        reading_from_message("energy-cloud/a/b/SP-001/reading", b'{"meterId"', "energy-cloud")


@pytest.mark.mqtt
def test_subscriber_stores_qos1_messages_once(fresh_pg_url):
    require_service("Mosquitto", "mqtt://127.0.0.1:1883", "GRIDLEDGER_MQTT_HOST")
    engine = make_engine(fresh_pg_url)
    with Session(engine) as session:
        seed_meters(session)
    root = f"energy-cloud-test-{uuid.uuid4().hex[:8]}"
    settings = Settings(_env_file=None, database_url=fresh_pg_url, mqtt_topic_root=root)
    subscriber = Subscriber(settings=settings, client_id=f"gl-test-{uuid.uuid4().hex[:8]}")
    subscriber.now = lambda: NOW
    thread = threading.Thread(target=subscriber.run, daemon=True)
    thread.start()
    assert subscriber.subscribed.wait(10), "subscription not acknowledged by Mosquitto"

    publisher = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"gl-pub-{uuid.uuid4().hex[:8]}"
    )
    publisher.connect("127.0.0.1", 1883)
    publisher.loop_start()
    infos = []
    for k in range(1, 41):  # 40 generation readings, each published twice
        payload = (
            f'{{"timestamp": "{iso(NOW - 900 * k)}", "value": {k}, '
            '"unit": "Wh", "quality": "high"}'
        )
        for _ in range(2):
            infos.append(
                publisher.publish(
                    f"{root}/seoul/solar-panel/meter:solar-1/generation", payload, qos=1
                )
            )
    infos.append(
        publisher.publish(
            f"{root}/seoul/smart-meter/meter:house-1/consumption",
            f'{{"timestamp": "{iso(NOW - 900)}", "value": 1.5, "unit": "kWh"}}',
            qos=1,
        )
    )
    infos.append(
        publisher.publish(
            f"{root}/seoul/solar-panel/meter:solar-1/generation",
            f'{{"timestamp": "{iso(NOW - 900)}", "value": -3}}',
            qos=1,
        )
    )
    stop_when_handled(subscriber, thread, infos, publisher)

    assert subscriber.totals == {"accepted": 41, "duplicate": 40, "corrected": 0, "rejected": 1}
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(MeterReading)).one() == 41
        assert session.exec(select(func.sum(MeterReading.export_wh))).one() == sum(range(1, 41))
        assert session.exec(
            select(MeterReading.import_wh).where(MeterReading.import_wh.is_not(None))
        ).all() == [1500]
    engine.dispose()


@pytest.mark.mqtt
def test_a_signed_reading_published_with_mosquitto_pub_is_verified(fresh_pg_url, tmp_path):
    """A meter publishing its signed reading with the stock `mosquitto_pub` client: stored
    verified; the same reading unsigned on the next interval is stored unverified."""
    require_service("Mosquitto", "mqtt://127.0.0.1:1883", "GRIDLEDGER_MQTT_HOST")
    engine = make_engine(fresh_pg_url)
    with Session(engine) as session:
        _, _, solar, _ = seed_meters(session)
        approve(session, solar, meter_key("solar"))
        meter_id = solar.meter_id
    root = f"energy-cloud-test-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        _env_file=None,
        database_url=fresh_pg_url,
        mqtt_topic_root=root,
        deployment_file=write_deployment(tmp_path / "deployment.json"),
    )
    subscriber = Subscriber(settings=settings, client_id=f"gl-test-{uuid.uuid4().hex[:8]}")
    subscriber.now = lambda: NOW
    thread = threading.Thread(target=subscriber.run, daemon=True)
    thread.start()
    assert subscriber.subscribed.wait(10), "subscription not acknowledged by Mosquitto"

    domain = ReadingDomain(TEST_CHAIN_ID, TEST_REGISTRY)
    body = {"timestamp": iso(NOW - 900), "exportWh": 640, "meterId": meter_id}
    unsigned = {**body, "timestamp": iso(NOW - 1800)}
    for payload in (signed(body, meter_key("solar"), domain), unsigned):
        subprocess.run(
            [
                "mosquitto_pub",
                *("-h", "127.0.0.1", "-p", "1883", "-q", "1"),
                *("-i", f"gl-meter-{uuid.uuid4().hex[:8]}"),
                *("-t", f"{root}/seoul/solar-panel/{meter_id}/reading"),
                *("-m", json.dumps(payload)),
            ],
            check=True,
            timeout=30,
        )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and sum(subscriber.totals.values()) < 2:
        time.sleep(0.05)
    subscriber.stopped.set()
    thread.join(10)
    with Session(engine) as session:
        rows = {
            r.interval_start: (r.verified, r.signer)
            for r in session.exec(select(MeterReading)).all()
        }
    engine.dispose()
    assert rows == {NOW - 900: (True, meter_key("solar").address), NOW - 1800: (False, None)}


def test_telemetry_without_a_timestamp_takes_the_chain_clock(fresh_pg_url, fresh_anvil, tmp_path):
    """Under `clock=chain` (a simulation three days ahead of the wall), an output sample and a
    batched SoC message whose samples carry no timestamp are stamped with chain time, as
    readings are judged, not with the wall's; a stamped sample keeps its own time."""
    ahead, settings = chain_clock_ahead(fresh_anvil, fresh_pg_url, tmp_path, days=3, hour=6)
    root = f"i16-mqtt-clock-{uuid.uuid4().hex[:8]}"
    settings = settings.model_copy(update={"mqtt_topic_root": root, "mqtt_shared_group": ""})
    engine = make_engine(fresh_pg_url)
    with Session(engine) as session:
        seed_meters(session)
        owner = session.exec(select(Account).where(Account.email == "owner@example.org")).one()
        battery = add_resource(session, owner).id
        session.commit()
    topic = f"{root}/KR-SE-001/battery/{battery}/"
    subscriber = Subscriber(settings=settings, client_id=f"i16-mqtt-clock-{uuid.uuid4().hex[:8]}")
    try:
        subscriber.process(
            [
                (1, 1, topic + "output", b'{"value": 1500}'),
                (2, 1, topic + "soc", b'[{"value": 5, "unit": "kWh"}]'),
                (3, 1, topic + "output", json.dumps({"timestamp": iso(NOW), "value": 9}).encode()),
            ]
        )
    finally:
        subscriber.engine.dispose()
    with Session(engine) as session:
        rows = session.exec(
            select(TelemetrySample.at, TelemetrySample.metric, TelemetrySample.value)
        ).all()
        state_at = session.get(DerResource, battery).state_at
    engine.dispose()
    wall = time.time()
    stamped = sorted(rows)
    assert stamped[0] == (NOW, "output", 9)
    assert sorted((metric, value) for _, metric, value in stamped[1:]) == [
        ("output", 1500),
        ("soc", 5000),
    ]
    for at, _, _ in stamped[1:]:
        assert ahead <= at <= ahead + 60, (at, ahead)  # the chain's now, not the wall's
        assert at - wall > 2 * 86_400
    assert state_at is not None and state_at.timestamp() >= ahead


def test_an_unreachable_chain_clock_is_retried_not_dead_lettered(fresh_pg_url):
    """Under `clock=chain` with the chain RPC down, a batch of telemetry cannot be stamped: it
    is an outage (the batch put back, unacknowledged), not poison (no dead letter)."""
    root = f"i16-mqtt-clock-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        _env_file=None,
        database_url=fresh_pg_url,
        mqtt_topic_root=root,
        mqtt_shared_group="",
        clock="chain",
        rpc_url=f"http://127.0.0.1:{free_port()}",  # nothing listens
    )
    subscriber = Subscriber(settings=settings, client_id=f"i16-mqtt-clock-{uuid.uuid4().hex[:8]}")
    message = (1, 1, f"{root}/KR-SE-001/battery/{uuid.uuid4()}/output", b'{"value": 1}')
    subscriber.pending.append(message)
    acked: list[int] = []
    subscriber.client.ack_all = lambda mids: acked.extend(mids)
    try:
        with pytest.raises(StoreUnavailable, match="clock=chain"):
            subscriber.flush()
        with Session(subscriber.engine) as session:
            assert session.exec(select(func.count()).select_from(DeadLetter)).one() == 0
    finally:
        subscriber.engine.dispose()
    assert subscriber.pending == [message]
    assert acked == []


# SIGTERM lands while the main thread holds the stop Event's lock, as it does between the
# timeouts of `stopped.wait()` in the subscriber's loop: the signal's Python handler then runs
# on that thread, the lock held
STOP_PROBE = """
import os, signal, sys, threading
stopped = threading.Event()
{install}
with stopped._cond:
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(10_000):
        pass
print("stopped" if stopped.wait(10) else "not stopped", flush=True)
"""


def test_sigterm_stops_the_subscriber_even_when_it_lands_inside_the_stop_events_wait():
    """`stop_on_signals` sets the stop Event from a thread of its own: stopped. The handler it
    replaced (`stopped.set()` in a Python signal handler) waits for the lock its own thread
    holds, forever: the subscriber that ignored SIGTERM."""
    fixed = STOP_PROBE.format(
        install="from backend.meters.mqtt import stop_on_signals; stop_on_signals(stopped)"
    )
    done = subprocess.run(
        [sys.executable, "-c", fixed],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == "stopped"
    replaced = STOP_PROBE.format(install="signal.signal(signal.SIGTERM, lambda *_: stopped.set())")
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([sys.executable, "-c", replaced], capture_output=True, timeout=10)

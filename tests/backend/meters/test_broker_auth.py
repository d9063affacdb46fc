"""Per-device MQTT logins enforced by a real Mosquitto with GridLedger's password file and ACL."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from sqlmodel import Session, func, select

from backend.chain.anvil import free_port
from backend.core.config import Settings
from backend.core.db import make_engine
from backend.meters.broker_auth import mosquitto_hash, verify, write_broker_auth
from backend.meters.models import MeterReading
from backend.meters.mqtt import Subscriber
from backend.meters.validation import iso
from tests.fixtures.meters import NOW, seed_meters
from tests.fixtures.resources import add_resource


def test_hashes_are_mosquittos_own_format():
    generated = subprocess.run(
        ["mosquitto_passwd", "-c", "-b", "/dev/stdout", "probe", "s3cret"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert verify("s3cret", generated.split(":", 1)[1])  # mosquitto_passwd's hash checks in Python
    ours = mosquitto_hash("s3cret")
    assert ours.startswith("$7$210000$") and verify("s3cret", ours) and not verify("wrong", ours)


def connect(port: int, username: str, password: str) -> tuple[mqtt.Client, int]:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"gl-dev-{uuid.uuid4().hex[:8]}"
    )
    client.username_pw_set(username, password)
    result: dict = {}
    connected = threading.Event()

    def on_connect(c, userdata, flags, reason_code, properties):
        result["rc"] = reason_code.value
        connected.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert connected.wait(10), "no CONNACK from Mosquitto"
    return client, result["rc"]


def broker_settings(database_url: str, port: int) -> Settings:
    """The service login's settings for a broker of the test's own on `port`."""
    return Settings(
        _env_file=None,
        database_url=database_url,
        mqtt_port=port,
        mqtt_username="gridledger-ingest",
        mqtt_password="ingest-secret-9",
    )


def start_broker(tmp_path, port: int) -> subprocess.Popen:
    """A Mosquitto of the test's own with the password file and ACL written to `tmp_path`."""
    (tmp_path / "mosquitto.conf").write_text(
        # `user root`: a broker started as root keeps root, so it can read the 0600 files we wrote.
        f"listener {port} 127.0.0.1\nallow_anonymous false\npersistence false\nuser root\n"
        f"password_file {tmp_path / 'passwords'}\nacl_file {tmp_path / 'acl'}\n"
    )
    with open(tmp_path / "broker.log", "w") as log:
        broker = subprocess.Popen(
            ["mosquitto", "-v", "-c", str(tmp_path / "mosquitto.conf")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return broker


@pytest.mark.mqtt  # starts a Mosquitto of its own
def test_a_meter_can_only_publish_its_own_readings(fresh_pg_url, tmp_path):
    engine = make_engine(fresh_pg_url)
    with Session(engine) as session:
        _, _, solar, house = seed_meters(session)  # solar has an MQTT password, house has none
        solar_id, house_id = solar.meter_id, house.meter_id
        port = free_port()
        settings = broker_settings(fresh_pg_url, port)
        assert (
            write_broker_auth(
                session,
                password_file=tmp_path / "passwords",
                acl_file=tmp_path / "acl",
                settings=settings,
            )
            == 1
        )
    broker = start_broker(tmp_path, port)
    try:
        subscriber = Subscriber(settings=settings, client_id=f"gl-ingest-{uuid.uuid4().hex[:8]}")
        subscriber.now = lambda: NOW
        thread = threading.Thread(target=subscriber.run, kwargs={"retry_s": 0.1}, daemon=True)
        thread.start()
        assert subscriber.subscribed.wait(10), "the ingestion login was refused"

        _, refused = connect(port, solar_id, "not-the-password")
        assert refused != 0  # bad credentials: CONNACK refuses
        _, anonymous_refused = connect(port, house_id, "")
        assert anonymous_refused != 0  # a meter without an MQTT password has no login

        device, rc = connect(port, solar_id, "solar-secret-123")
        assert rc == 0
        own = device.publish(
            f"energy-cloud/de/solar-panel/{solar_id}/generation",
            f'{{"timestamp": "{iso(NOW - 900)}", "value": 321}}',
            qos=1,
        )
        foreign = device.publish(
            f"energy-cloud/de/smart-meter/{house_id}/consumption",
            f'{{"timestamp": "{iso(NOW - 900)}", "value": 999}}',
            qos=1,
        )
        own.wait_for_publish(10)
        foreign.wait_for_publish(10)  # the broker acknowledges, then drops it (ACL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sum(subscriber.totals.values()) < 1:
            time.sleep(0.05)
        time.sleep(1.0)  # give a wrongly delivered foreign message time to arrive
        subscriber.stopped.set()
        thread.join(10)
        device.loop_stop()
    finally:
        broker.terminate()
        broker.wait(10)
    assert subscriber.totals["accepted"] == 1 and sum(subscriber.totals.values()) == 1
    with Session(engine) as session:
        rows = session.exec(select(MeterReading.meter_id, MeterReading.export_wh)).all()
        assert [(r[0], r[1]) for r in rows] == [(solar_id, 321)]
        assert (
            session.exec(
                select(func.count())
                .select_from(MeterReading)
                .where(MeterReading.meter_id == house_id)
            ).one()
            == 0
        )
    engine.dispose()


@pytest.mark.mqtt  # starts a Mosquitto of its own
def test_a_der_reads_only_its_own_downlink_and_writes_only_its_telemetry(fresh_pg_url, tmp_path):
    engine = make_engine(fresh_pg_url)
    port = free_port()
    settings = broker_settings(fresh_pg_url, port)
    with Session(engine) as session:
        owner, *_ = seed_meters(session)
        mine = add_resource(session, owner, mqtt_password="battery-secret-1")
        theirs = add_resource(session, owner, name="other battery")
        logins = write_broker_auth(
            session,
            password_file=tmp_path / "passwords",
            acl_file=tmp_path / "acl",
            settings=settings,
        )
        assert logins == 2  # the solar meter and the battery with a password
        session.commit()
        prefix = f"energy-cloud/KR-SE-001/battery/{mine.id}"
        foreign = f"energy-cloud/KR-SE-001/battery/{theirs.id}"
        device_id = str(mine.id)
    broker = start_broker(tmp_path, port)
    seen: dict[str, list[str]] = {"device": [], "service": []}
    try:
        time.sleep(0.3)
        device, rc = connect(port, device_id, "battery-secret-1")
        service, service_rc = connect(port, "gridledger-ingest", "ingest-secret-9")
        assert (rc, service_rc) == (0, 0)
        device.on_message = lambda c, u, m: seen["device"].append(m.topic)
        service.on_message = lambda c, u, m: seen["service"].append(m.topic)
        subscribed = threading.Event()
        device.on_subscribe = lambda *_: subscribed.set()
        device.subscribe(
            [(f"{prefix}/command", 1), (f"{foreign}/command", 1), ("energy-cloud/#", 1)]
        )
        assert subscribed.wait(10)
        subscribed.clear()
        service.on_subscribe = lambda *_: subscribed.set()
        service.subscribe("energy-cloud/#", qos=1)
        assert subscribed.wait(10)
        for topic in (f"{prefix}/command", f"{prefix}/config", f"{foreign}/command"):
            service.publish(topic, b"{}", qos=1).wait_for_publish(10)
        for topic in (f"{prefix}/status", f"{prefix}/command", f"{foreign}/status"):
            device.publish(topic, b"{}", qos=1).wait_for_publish(10)  # acknowledged, maybe dropped
        time.sleep(1.0)
        for client in (device, service):
            client.disconnect()
            client.loop_stop()
    finally:
        broker.terminate()
        broker.wait(10)
        engine.dispose()
    # the device hears its own command and config (its own status is not its to read)
    assert sorted(seen["device"]) == [f"{prefix}/command", f"{prefix}/config"]
    # the service hears its three commands and the device's one permitted message
    assert sorted(seen["service"]) == sorted(
        [f"{prefix}/command", f"{prefix}/config", f"{foreign}/command", f"{prefix}/status"]
    )

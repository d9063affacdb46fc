"""MQTT over TLS on a real Mosquitto with the TLS listener of `broker_tls` and the per-device
logins of `broker_auth`: TLS 1.3 clients (our subscriber, `mosquitto_pub`) get through,
TLS 1.2-only clients (paho, `mosquitto_pub`) are refused."""

from __future__ import annotations

import os
import ssl
import subprocess
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from sqlmodel import Session, select

from backend.chain.anvil import free_port
from backend.core.config import Settings
from backend.core.db import make_engine
from backend.core.tls import prepare
from backend.meters.broker_auth import write_broker_auth
from backend.meters.broker_tls import broker_config
from backend.meters.models import MeterReading
from backend.meters.mqtt import Subscriber
from backend.meters.validation import iso
from tests.fixtures.meters import NOW, seed_meters

TLS12_ONLY = """openssl_conf = default_conf
[default_conf]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MaxProtocol = TLSv1.2
"""


def mosquitto_pub(
    settings: Settings,
    version: str,
    *,
    user: str,
    password: str,
    topic: str,
    openssl_conf: Path | None = None,
):
    env = dict(os.environ) | ({"OPENSSL_CONF": str(openssl_conf)} if openssl_conf else {})
    return subprocess.run(
        [
            "mosquitto_pub",
            "-d",  # prints OpenSSL's error
            "-h",
            "127.0.0.1",
            "-p",
            str(settings.mqtt_tls_port),
            "--cafile",
            str(settings.tls_ca_file),
            "--tls-version",
            version,
            "-i",
            f"gl-i14-tls-{uuid.uuid4().hex[:8]}",
            "-u",
            user,
            "-P",
            password,
            "-q",
            "1",
            "-t",
            topic,
            "-m",
            f'{{"timestamp": "{iso(NOW - 900)}", "value": 321}}',
        ],
        capture_output=True,
        text=True,
        timeout=20,
        env=env,
    )


@pytest.mark.mqtt  # starts a Mosquitto of its own
def test_tls13_clients_publish_and_tls12_clients_are_refused(fresh_pg_url, tmp_path):
    engine = make_engine(fresh_pg_url)
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        database_url=fresh_pg_url,
        tls="dev",
        mqtt_port=free_port(),  # nothing listens there: every client must use the TLS port
        mqtt_tls_port=free_port(),
        mqtt_username="gridledger-ingest",
        mqtt_password="ingest-secret-9",
    )
    prepare(settings)
    with Session(engine) as session:
        _, _, solar, _ = seed_meters(session)  # solar's MQTT password: solar-secret-123
        solar_id = solar.meter_id
        write_broker_auth(
            session,
            password_file=tmp_path / "passwords",
            acl_file=tmp_path / "acl",
            settings=settings,
        )
    (tmp_path / "mosquitto.conf").write_text(
        broker_config(settings, password_file=tmp_path / "passwords", acl_file=tmp_path / "acl")
    )
    topic = f"energy-cloud/de/solar-panel/{solar_id}/generation"
    with open(tmp_path / "broker.log", "w") as log:
        broker = subprocess.Popen(
            ["mosquitto", "-v", "-c", str(tmp_path / "mosquitto.conf")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    subscriber = Subscriber(settings=settings, client_id=f"gl-i14-tls-{uuid.uuid4().hex[:8]}")
    subscriber.now = lambda: NOW
    thread = threading.Thread(target=subscriber.run, kwargs={"retry_s": 0.1}, daemon=True)
    try:
        thread.start()
        assert subscriber.subscribed.wait(10), (tmp_path / "broker.log").read_text()

        # a paho client limited to TLS 1.2: the handshake fails, no CONNECT is ever sent
        old = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"gl-i14-tls-{uuid.uuid4()}")
        context = ssl.create_default_context(cafile=settings.tls_ca_file)
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        old.tls_set_context(context)
        old.username_pw_set(solar_id, "solar-secret-123")
        with pytest.raises(ssl.SSLError):
            old.connect("127.0.0.1", settings.mqtt_tls_port)

        # `--tls-version tlsv1.2` alone is a minimum (libmosquitto then negotiates TLS 1.3);
        # an OpenSSL configuration capping the version holds mosquitto_pub to TLS 1.2
        (tmp_path / "tls12.cnf").write_text(TLS12_ONLY)
        refused = mosquitto_pub(
            settings,
            "tlsv1.2",
            user=solar_id,
            password="solar-secret-123",
            topic=topic,
            openssl_conf=tmp_path / "tls12.cnf",
        )
        assert refused.returncode != 0 and "alert protocol version" in refused.stdout  # -d
        wrong_login = mosquitto_pub(
            settings, "tlsv1.3", user=solar_id, password="not-the-password", topic=topic
        )
        assert wrong_login.returncode != 0  # per-device credentials still checked over TLS
        time.sleep(0.5)
        assert sum(subscriber.totals.values()) == 0

        sent = mosquitto_pub(
            settings, "tlsv1.3", user=solar_id, password="solar-secret-123", topic=topic
        )
        assert sent.returncode == 0, sent.stderr
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and subscriber.totals["accepted"] < 1:
            time.sleep(0.05)
    finally:
        subscriber.stopped.set()
        thread.join(10)
        broker.terminate()
        broker.wait(10)
    assert subscriber.totals == {"accepted": 1, "duplicate": 0, "corrected": 0, "rejected": 0}
    with Session(engine) as session:
        stored = [(r.meter_id, r.export_wh, r.source) for r in session.exec(select(MeterReading))]
    engine.dispose()
    assert stored == [(solar_id, 321, "mqtt")]  # the one publish over TLS 1.3, and only it

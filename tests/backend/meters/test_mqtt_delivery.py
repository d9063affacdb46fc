"""MQTT delivery on the real Mosquitto: subscribers sharing one subscription split the stream
and lose nothing; a subscriber killed before its commit gets the messages again and stores them
once; a head-end system's batched payload (a JSON array of readings) with a bad element stores
the rest and dead-letters that element alone; DER telemetry redelivered after its commit but
before its acknowledgement is stored once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from sqlmodel import Session, func, select

from backend.accounts.models import Account
from backend.core.config import PROJECT_ROOT, Settings
from backend.core.db import make_engine
from backend.deadletters.models import DeadLetter
from backend.meters.models import MeterReading
from backend.meters.validation import iso
from backend.resources.models import TelemetrySample
from tests.fixtures.meters import NOW, seed_meters
from tests.fixtures.mqtt import (
    mosquitto_pub,
    own_mosquitto,
    run_subscriber,
    unique,
    wait_until,
)
from tests.fixtures.resources import add_resource

METER = "meter:solar-1"
OWNER = "owner@example.org"  # the meters' owner (tests/fixtures/meters.py)


def topic(root: str) -> str:
    return f"{root}/seoul/solar-panel/{METER}/reading"


def reading(k: int) -> dict[str, object]:
    """The k-th interval before NOW, k Wh exported."""
    return {"timestamp": iso(NOW - 900 * k), "exportWh": k}


def stored(engine, value: Any = MeterReading.export_wh) -> tuple[int, int]:
    """(rows, `value` summed) in the store: readings and Wh exported unless told."""
    with Session(engine) as session:
        count, total = session.exec(
            select(func.count(), func.coalesce(func.sum(value), 0)).where(value.is_not(None))
        ).one()
    return count, total


@pytest.mark.mqtt
def test_a_shared_subscription_splits_the_stream_and_loses_nothing(world):
    engine, settings, root, client_ids, publisher = world
    settings = settings.model_copy(
        update={"mqtt_shared_group": unique("group"), "mqtt_batch_linger_ms": 5}
    )
    client_ids += [unique("gl-ingest"), unique("gl-ingest")]
    running = [run_subscriber(settings, client_id) for client_id in client_ids]
    count = 300
    for k in range(1, count + 1):
        publisher.client.publish(topic(root), json.dumps(reading(k)), qos=1)
    publisher.publish(topic(root), json.dumps(reading(1)))  # a duplicate, last
    assert wait_until(lambda: stored(engine)[0] == count), stored(engine)
    assert wait_until(
        lambda: (
            sum(r.subscriber.totals["accepted"] + r.subscriber.totals["duplicate"] for r in running)
            == count + 1
        )
    )
    for r in running:
        r.stop()
    shares = [r.subscriber.totals["accepted"] for r in running]
    assert all(share > 0 for share in shares), shares  # both took part
    assert sum(shares) == count
    assert sum(r.subscriber.totals["duplicate"] for r in running) == 1
    assert stored(engine) == (count, count * (count + 1) // 2)  # Wh conserved


def start_process(
    url: str,
    root: str,
    client_id: str,
    log_path,
    linger_ms: int = 600_000,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """`python -m backend.meters.mqtt`; unless told, one that never commits on its own: one
    batch of up to 10,000 messages, lingering ten minutes for it to fill."""
    env = {
        **os.environ,
        "GRIDLEDGER_DATABASE_URL": url,
        "GRIDLEDGER_MQTT_TOPIC_ROOT": root,
        "GRIDLEDGER_MQTT_SHARED_GROUP": "",
        "GRIDLEDGER_MQTT_CLIENT_ID": client_id,
        "GRIDLEDGER_MQTT_BATCH_MAX_MESSAGES": "10000",
        "GRIDLEDGER_MQTT_BATCH_LINGER_MS": str(linger_ms),
        **(env or {}),
    }
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "backend.meters.mqtt", "0"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.mqtt
def test_a_subscriber_killed_before_its_commit_gets_the_messages_again(world, tmp_path):
    """The subscriber process holds 40 received readings, uncommitted and unacknowledged, and
    is killed (SIGKILL): nothing was stored. Its successor (same client id, so the same
    persistent session) gets all 40 redelivered and stores each once."""
    engine, settings, root, client_ids, _publisher = world
    url = settings.database_url
    prefix = unique("gl-ingest")
    client_ids.append(f"{prefix}-0")
    log_path = tmp_path / "subscriber.log"
    process = start_process(url, root, prefix, log_path)
    try:
        assert wait_until(lambda: b" subscribed to " in log_path.read_bytes(), timeout_s=90), (
            log_path.read_text()
        )
        for k in range(1, 41):
            mosquitto_pub(topic(root), json.dumps(reading(k)).encode(), tmp_path)
        time.sleep(1)  # delivered to the process (receive maximum 65,535), held for its batch
        assert process.poll() is None
        assert stored(engine) == (0, 0)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    successor = run_subscriber(settings, f"{prefix}-0")
    assert wait_until(lambda: stored(engine)[0] == 40), stored(engine)
    successor.stop()
    assert successor.subscriber.totals["accepted"] == 40
    assert stored(engine) == (40, 820)


@pytest.mark.mqtt
def test_a_batched_payload_stores_the_good_readings_and_dead_letters_the_bad_one(world, tmp_path):
    """A head-end system's message: an array of 50 readings (published with the stock
    `mosquitto_pub`), element 7 a negative export and element 20 not an object. The 48 good
    ones are stored; each bad element is its own dead letter (the element, the reason); the
    same message again adds no reading and counts the same two dead letters once more."""
    engine, settings, root, client_ids, _publisher = world
    client_ids.append(unique("gl-ingest"))
    running = run_subscriber(settings, client_ids[-1])
    batch: list[object] = [reading(k) for k in range(1, 51)]
    batch[7] = {**reading(8), "exportWh": -8}
    batch[20] = "not a reading"
    payload = json.dumps(batch).encode()
    good_wh = sum(range(1, 51)) - 8 - 21
    for _ in range(2):
        mosquitto_pub(topic(root), payload, tmp_path)
    totals = running.subscriber.totals
    assert wait_until(lambda: sum(totals.values()) == 100), totals
    running.stop()
    assert totals == {"accepted": 48, "duplicate": 48, "corrected": 0, "rejected": 4}
    assert stored(engine) == (48, good_wh)
    with Session(engine) as session:
        letters = session.exec(select(DeadLetter).order_by(DeadLetter.reason)).all()
    assert [(json.loads(d.payload), d.count, d.topic) for d in letters] == [
        ("not a reading", 2, topic(root)),
        ({**reading(8), "exportWh": -8}, 2, topic(root)),
    ]
    assert letters[0].reason == "element 20 of 50: a reading must be a JSON object"
    assert letters[1].reason.startswith("element 7 of 50: ")


@pytest.mark.mqtt
def test_telemetry_redelivered_after_its_commit_is_stored_once(world):
    """A subscriber commits a batched message of 30 output samples and a single sample but
    never acknowledges them (as if it died between commit and PUBACK) and disconnects; its
    successor (same client id, same persistent session) gets both again from Mosquitto and
    stores nothing twice: 31 duplicates counted, no dead letter, the rows and watts unchanged."""
    engine, settings, root, client_ids, publisher = world
    with Session(engine) as session:
        owner = session.exec(select(Account).where(Account.email == OWNER)).one()
        battery_id = add_resource(session, owner).id
        session.commit()
    output = f"{root}/KR-SE-001/battery/{battery_id}/output"
    batch = [{"timestamp": iso(NOW - 60 * k), "value": k} for k in range(1, 31)]
    client_id = unique("gl-ingest")
    client_ids.append(client_id)
    first = run_subscriber(settings, client_id)
    first.subscriber.client.ack_all = lambda *_: None  # committed, never acknowledged
    publisher.publish(output, json.dumps(batch))
    publisher.publish(output, json.dumps({"timestamp": iso(NOW), "value": 100}))
    assert wait_until(lambda: first.subscriber.totals.get("telemetry") == 31)
    first.stop()
    assert stored(engine, TelemetrySample.value) == (31, 465 + 100)

    successor = run_subscriber(settings, client_id)
    assert wait_until(lambda: successor.subscriber.totals.get("telemetry_duplicate") == 31), (
        successor.subscriber.totals
    )
    successor.stop()
    assert successor.subscriber.totals.get("telemetry") == 0
    assert successor.subscriber.totals["rejected"] == 0
    assert stored(engine, TelemetrySample.value) == (31, 465 + 100)
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(DeadLetter)).one() == 0


@pytest.mark.mqtt
def test_sigterm_under_load_exits_at_once_and_every_message_is_stored_or_redelivered(
    fresh_pg_url, tmp_path
):
    """A subscriber process takes a stream of 6,000 single-reading messages (a C publisher,
    QoS 1) and gets SIGTERM while the stream still runs: it exits within 5 s, status 0. Its
    successor (same client id, so the same persistent session) gets what the first left
    unacknowledged or never received: every reading is stored exactly once, Wh conserved, and
    nothing the first one committed comes back (acknowledged before it exited)."""
    engine = make_engine(fresh_pg_url)
    with Session(engine) as session:
        seed_meters(session)
        session.commit()
    count = 6_000
    root = unique("i16-mqtt-term")
    client_id = unique("i16-mqtt-term")
    last = int(time.time()) // 900 * 900 - 900

    def wh(k: int) -> int:
        return 1 + k % 2_000  # within the meter's 2,500 Wh per interval

    lines = b"".join(
        json.dumps({"timestamp": iso(last - 900 * k), "exportWh": wh(k)}).encode() + b"\n"
        for k in range(1, count + 1)
    )
    with own_mosquitto(tmp_path) as port:
        env = {"GRIDLEDGER_MQTT_PORT": str(port), "GRIDLEDGER_MQTT_BATCH_MAX_MESSAGES": "200"}
        log_path = tmp_path / "subscriber.log"
        process = start_process(fresh_pg_url, root, client_id, log_path, linger_ms=10, env=env)
        try:
            assert wait_until(lambda: b" subscribed to " in log_path.read_bytes(), 90), (
                log_path.read_text()
            )
            publisher = subprocess.Popen(
                [
                    *("mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-l"),
                    *("-i", unique("i16-mqtt-pub"), "-t", topic(root)),
                ],
                stdin=subprocess.PIPE,
            )
            assert publisher.stdin is not None
            writer = threading.Thread(target=publisher.stdin.write, args=(lines,))
            writer.start()
            assert wait_until(lambda: stored(engine)[0] >= 200, 60), stored(engine)
            assert publisher.poll() is None, "the stream ended before SIGTERM: raise `count`"
            began = time.monotonic()
            process.send_signal(signal.SIGTERM)
            process.wait(30)
            took = time.monotonic() - began
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGUSR1)  # the stacks into the log, then gone
                time.sleep(1)
                process.kill()
                process.wait(10)
        assert process.returncode == 0, log_path.read_text()[-3000:]
        assert took < 5, (took, log_path.read_text()[-3000:])
        print(f"exited {took:.2f} s after SIGTERM")
        first = stored(engine)
        assert 0 < first[0] < count
        writer.join(60)
        publisher.stdin.close()
        assert publisher.wait(60) == 0
        settings = Settings(
            _env_file=None,
            database_url=fresh_pg_url,
            mqtt_topic_root=root,
            mqtt_shared_group="",
            mqtt_port=port,
        )
        successor = run_subscriber(settings, f"{client_id}-0", now=None)
        assert wait_until(lambda: stored(engine)[0] == count, 120), (
            stored(engine),
            first,
            successor.subscriber.totals,
            len(successor.subscriber.pending),
        )
        successor.stop()
    assert stored(engine) == (count, sum(wh(k) for k in range(1, count + 1)))  # Wh conserved
    assert successor.subscriber.totals["accepted"] == count - first[0]
    assert successor.subscriber.totals["duplicate"] == 0
    engine.dispose()

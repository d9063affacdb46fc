"""Retiring a shared-subscription member no longer run (`python -m backend.meters.mqtt retire`),
on the machine's Mosquitto with the stock `mosquitto_pub`: Mosquitto 2.0 deals the group's
messages round-robin to an offline member too, so a member stopped for good holds its share
queued in its session. The retiree drains that share into the store (nothing lost, nothing
stored twice: what the old process committed without acknowledging comes back as idempotent
duplicates) and ends the session, after which the running member takes the whole stream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import paho.mqtt.client as mqtt
import pytest

from backend.core.config import PROJECT_ROOT
from backend.meters.mqtt import Retiree
from backend.meters.validation import iso
from tests.backend.meters.test_mqtt_delivery import stored
from tests.fixtures.meters import NOW
from tests.fixtures.mqtt import BROKER, forget_session, run_subscriber, unique, wait_until

METER = "meter:solar-1"


def publish_lines(root: str, readings: list[dict[str, object]]) -> None:
    """One `mosquitto_pub -l` (QoS 1), a message per reading; returns once all are PUBACKed."""
    topic = f"{root}/seoul/solar-panel/{METER}/reading"
    subprocess.run(
        [
            *("mosquitto_pub", "-h", BROKER[0], "-p", str(BROKER[1]), "-q", "1", "-l"),
            *("-i", unique("gl-mpub"), "-t", topic),
        ],
        input=b"".join(json.dumps(r).encode() + b"\n" for r in readings),
        check=True,
        timeout=60,
    )


def readings(first: int, ks: range) -> list[dict[str, object]]:
    """The k-th interval before `first`, k Wh exported, for each k."""
    return [{"timestamp": iso(first - 900 * k), "exportWh": k} for k in ks]


def session_present(client_id: str) -> bool:
    """Whether the broker still holds a session for `client_id` (asked without creating one:
    a clean start, no expiry)."""
    flags: list[bool] = []
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    client.on_connect = lambda _c, _u, f, *_: flags.append(f.session_present)
    client.connect(*BROKER, clean_start=False)
    client.loop_start()
    try:
        assert wait_until(lambda: bool(flags), 10), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return flags[0]


def shared(world):
    """The world's settings on a new shared subscription (members PREFIX-0, PREFIX-1, …)."""
    _engine, settings, _root, _client_ids, _publisher = world
    return settings.model_copy(
        update={
            "mqtt_shared_group": unique("group"),
            "mqtt_batch_linger_ms": 5,
            "mqtt_client_id": unique("gl-ingest"),
        }
    )


@pytest.mark.mqtt
def test_retire_drains_a_stopped_members_share_and_ends_its_session(world):
    """Two members; member 1 stops for good. 200 readings published: member 0 stores its half,
    member 1's half waits in its session. Retiring member 1 stores exactly that half (every
    reading once, Wh conserved) and ends its session: 20 readings published afterwards are all
    stored by member 0 alone."""
    engine, _settings, root, client_ids, _publisher = world
    settings = shared(world)
    ids = [f"{settings.mqtt_client_id}-{i}" for i in range(2)]
    client_ids += ids
    first, second = (run_subscriber(settings, client_id) for client_id in ids)
    second.stop()  # disconnected, session kept: the broker still deals it a share
    count = 200
    publish_lines(root, readings(NOW, range(1, count + 1)))
    assert wait_until(lambda: first.subscriber.totals["accepted"] >= count // 4)
    time.sleep(1)  # member 0 done with its share
    before = stored(engine)[0]
    assert 0 < before < count, before  # member 1's share is stuck in its session
    assert first.subscriber.totals["accepted"] == before

    retiree = Retiree(settings=settings, client_id=ids[1])
    retiree.now = lambda: NOW
    assert retiree.retire(timeout_s=60) is True  # it had a session
    assert retiree.received == count - before
    assert retiree.totals["accepted"] == count - before
    assert retiree.totals["duplicate"] == retiree.totals["rejected"] == 0
    assert stored(engine) == (count, count * (count + 1) // 2)
    assert not session_present(ids[1])
    forget_session(ids[1])

    publish_lines(root, readings(NOW, range(count + 1, count + 21)))
    assert wait_until(lambda: stored(engine)[0] == count + 20), stored(engine)
    first.stop()
    assert first.subscriber.totals["accepted"] == before + 20


@pytest.mark.mqtt
def test_retire_command_stores_nothing_twice_and_refuses_a_configured_index(world, tmp_path):
    """Member 1 committed 30 readings without acknowledging them (as if it died between commit
    and PUBACK), then stopped for good; 100 more are published while only member 0 runs.
    `python -m backend.meters.mqtt retire --index 1` stores member 1's queued share, counts the
    30 redelivered as duplicates, stores no interval twice and ends the session; `--index 0`
    (still configured) is refused without --force and touches nothing."""
    engine, _settings, root, client_ids, _publisher = world
    last = int(time.time()) // 900 * 900 - 900  # the command runs on the wall clock
    settings = shared(world)
    ids = [f"{settings.mqtt_client_id}-{i}" for i in range(2)]
    client_ids += ids
    second = run_subscriber(settings, ids[1], now=last + 900)  # alone in the group: all 30
    second.subscriber.client.ack_all = lambda *_: None  # committed, never acknowledged
    publish_lines(root, readings(last, range(1, 31)))
    assert wait_until(lambda: second.subscriber.totals["accepted"] == 30)
    second.stop()  # for good
    first = run_subscriber(settings, ids[0], now=last + 900)
    publish_lines(root, readings(last, range(31, 131)))
    time.sleep(1)
    before = stored(engine)[0]
    assert 30 < before < 130, before

    env = {
        **os.environ,
        "GRIDLEDGER_DATABASE_URL": settings.database_url,
        "GRIDLEDGER_MQTT_TOPIC_ROOT": root,
        "GRIDLEDGER_MQTT_SHARED_GROUP": settings.mqtt_shared_group,
        "GRIDLEDGER_MQTT_CLIENT_ID": settings.mqtt_client_id,
        "GRIDLEDGER_MQTT_SUBSCRIBERS": "1",
    }
    command = [sys.executable, "-m", "backend.meters.mqtt", "retire"]
    refused = subprocess.run(
        [*command, "--index", "0"], cwd=PROJECT_ROOT, env=env, capture_output=True, timeout=120
    )
    assert refused.returncode == 2, refused.stderr
    assert b"--force" in refused.stderr
    done = subprocess.run(
        [*command, "--index", "1"], cwd=PROJECT_ROOT, env=env, capture_output=True, timeout=120
    )
    log = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, log
    assert f"{ids[1]} retired: session ended; {130 - before + 30} messages drained" in log, log
    assert f"accepted {130 - before}, duplicate 30," in log, log
    assert stored(engine) == (130, 130 * 131 // 2)  # each interval once, Wh conserved
    assert not session_present(ids[1])
    forget_session(ids[1])
    first.stop()
    assert first.subscriber.totals["accepted"] == before - 30

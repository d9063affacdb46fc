"""Subscriber processes for the MQTT benchmarks (mqtt_ingest, meter_ingest), each run on its
own: client ids, shared-subscription group and topic root new per run, every subscriber
subscribed before the first publish (a shared subscription keeps nothing for a group before
its first member subscribed), and the runs' persistent sessions ended afterwards, so that
none of them stays on the broker, subscribed, for the day its session lasts."""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt

from backend.chain.anvil import free_port
from backend.core.config import PROJECT_ROOT

BROKER = ["127.0.0.1", "1883"]  # host, port (`own_broker` points it at the benchmark's own)
# Readings stored in the scratch schema, of any source: a run's figure is the difference. It
# reads the runs' lengths only; counting `meter_readings WHERE source = 'mqtt'` unnested every
# reading of the schema (0.4 s per poll with 650k stored, one core of the two kept busy by
# polling every 20 ms: what held meter_ingest's MQTT figure down, with its Python publishers,
# and the second of two runs more than the first)
READINGS_SQL = "SELECT coalesce(sum(slots), 0) FROM reading_runs"


class Subscribers(list[subprocess.Popen[bytes]]):
    """The running `python -m backend.meters.mqtt INDEX` processes of one run, and their ids."""

    client_ids: list[str]
    logs: list[Path]


def start(url: str, root: str, count: int, wait_s: float = 120) -> Subscribers:
    """`count` subscriber processes on a new shared subscription, once all are subscribed."""
    prefix = f"gl-bench-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "GRIDLEDGER_DATABASE_URL": url,
        "GRIDLEDGER_MQTT_TOPIC_ROOT": root,
        "GRIDLEDGER_MQTT_HOST": BROKER[0],
        "GRIDLEDGER_MQTT_PORT": BROKER[1],
        "GRIDLEDGER_MQTT_SHARED_GROUP": f"bench-{uuid.uuid4().hex[:8]}",
        "GRIDLEDGER_MQTT_CLIENT_ID": prefix,
    }
    running = Subscribers()
    running.client_ids = [f"{prefix}-{i}" for i in range(count)]
    running.logs = [
        Path(tempfile.mkstemp(prefix="gl-bench-mqtt-", suffix=".log")[1]) for _ in range(count)
    ]
    for i, path in enumerate(running.logs):
        with open(path, "ab") as log:
            running.append(
                subprocess.Popen(
                    [sys.executable, "-m", "backend.meters.mqtt", str(i)],
                    cwd=PROJECT_ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    deadline = time.monotonic() + wait_s
    while not all(b" subscribed to " in p.read_bytes() for p in running.logs):
        if time.monotonic() > deadline or any(p.poll() is not None for p in running):
            finish(running)
            raise RuntimeError(f"subscribers not subscribed; see {[str(p) for p in running.logs]}")
        time.sleep(0.1)
    return running


def finish(running: Subscribers) -> None:
    """Stop the processes, then end their persistent sessions on the broker."""
    for process in running:
        stop(process)
    for client_id in running.client_ids:
        end_session(client_id)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 30 s (said on stderr: a subscriber that hangs on its way out
    is a bug to chase; `kill -USR1` prints its threads' stacks into its log first)."""
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        print(f"bench: {process.args!r} ignored SIGTERM for 30 s; killed", file=sys.stderr)
        process.kill()
        process.wait(30)


def end_session(client_id: str) -> None:
    """Connect as `client_id` with a clean start and no session expiry, then disconnect: the
    broker drops the session and its subscription (and whatever it still queued)."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    try:
        client.connect(BROKER[0], int(BROKER[1]), clean_start=True)
        client.loop_start()
        deadline = time.monotonic() + 10
        while not client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.02)
        client.disconnect()
    except OSError as exc:
        print(f"bench: session {client_id} not ended: {exc}", file=sys.stderr)
    finally:
        client.loop_stop()


def publish(topics: dict[str, list[bytes]]) -> list[subprocess.Popen[bytes]]:
    """One `mosquitto_pub -l` per topic, fed its lines; returns the running processes."""
    processes = []
    for topic in topics:
        process = subprocess.Popen(
            [
                "mosquitto_pub",
                *("-h", BROKER[0], "-p", BROKER[1], "-q", "1", "-l"),
                *("-i", f"gl-bench-pub-{uuid.uuid4().hex[:8]}", "-t", topic, "-M", "1000"),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
        processes.append(process)
    feeds = [b"\n".join(payloads) + b"\n" for payloads in topics.values()]
    for process, feed in zip(processes, feeds, strict=True):
        assert process.stdin is not None
        process.stdin.write(feed)
        process.stdin.close()
    return processes


@contextmanager
def own_broker() -> Iterator[None]:
    """A Mosquitto of our own on a free port that queues rather than drops: the machine's
    broker drops QoS 1 messages beyond 1,000 queued per client (`max_queued_messages`), which a
    burst from C publishers outruns."""
    port = free_port()
    config = Path(tempfile.mkdtemp(prefix="gl-bench-broker-")) / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        f"max_queued_messages 0\nuser {getpass.getuser()}\n"
    )
    broker = subprocess.Popen(
        ["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    previous = list(BROKER)
    BROKER[1] = str(port)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or broker.poll() is not None:
                    raise RuntimeError("the benchmark's Mosquitto did not start") from None
                time.sleep(0.1)
        yield
    finally:
        BROKER[:] = previous
        broker.terminate()
        broker.wait(10)

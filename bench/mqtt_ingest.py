"""MQTT ingestion end to end: publish start -> last row committed, through the machine's
Mosquitto (QoS 1 both ways) and `python -m backend.meters.mqtt` processes on one shared
subscription, into a scratch PostgreSQL schema.

Figures (all from the same run):
- `mqtt_readings_per_s`: one reading per message (`…/{meter}/reading`), with 1 and with 2
  subscriber processes (`…_1_subscriber`, `…_2_subscribers`; the plain name is the better);
- `mqtt_batched_readings_per_s`: a head-end system's batched payload, a JSON array of
  BATCH_SIZE readings per message, 1 and 2 subscriber processes likewise;
- `telemetry_samples_per_s`: DER `output` samples into `der_telemetry` (batched payloads of
  BATCH_SIZE samples), and `telemetry_single_samples_per_s` one sample per message;
- reference points measured here: `broker_messages_per_s` (the same QoS 1 messages delivered
  to a `mosquitto_sub` that stores nothing: the broker's and publisher's limit) and
  `copy_limit_readings_per_s` (a raw COPY of the same rows); each rate's ratio to its limit.

All on a Mosquitto of the benchmark's own (the machine's drops QoS 1 messages beyond 1,000
queued per client). The publishers are `mosquitto_pub -l` processes (C, one message per stdin
line, QoS 1), one per meter or resource topic, all started together.

Why 2 subscribers store single readings slower than 1 on this machine (measured in issue 16,
session 9): each publisher sends its meter's readings in interval order. One subscriber gets a
meter's consecutive intervals together and stores them as long runs (about one `reading_runs`
row per 33 readings); Mosquitto deals a shared subscription's messages round-robin, so with 2
(or 4) each gets every other interval of a meter and stores a row per 1-5 readings. Every row
costs PostgreSQL its GiST exclusion index (`reading_runs_no_overlap`, btree_gist): 58-64 us of
CPU per row COPYed vs 6.5 us with the constraint dropped. PostgreSQL CPU per 50k readings was
0.11-0.14 s with 1 subscriber and 0.7-5.0 s with 2-4 (10k-50k rows); with the constraint
dropped, 0.16-0.20 s with 2. Batched payloads are runs already, so they do not fragment. The
count each run polls (`_mqtt.READINGS_SQL`) also held back whichever run came second, as it
used to unnest every stored reading. Session 10 dropped the constraint (migration
i16_runs_locked_writes): the COPY takes its (meter, day) locks and checks for overlaps with one
index probe per run instead, so a fragmented batch costs little more than a whole one.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from sqlalchemy import text
from sqlmodel import Session

from backend.accounts.models import Account
from backend.core.db import make_engine
from backend.meters.schemas import MeterCreate
from backend.meters.services import register_meter
from backend.meters.validation import iso
from backend.resources.models import ResourceKind
from backend.resources.schemas import ResourceCreate
from backend.resources.services import register_resource
from bench import _mqtt as subscribers
from bench._database import scratch_schema
from bench._mqtt import BROKER, READINGS_SQL, own_broker, publish
from bench.meter_ingest import copy_limit

SINGLE = int(os.environ.get("GRIDLEDGER_BENCH_MQTT_READINGS", "40000"))
BATCHED = int(os.environ.get("GRIDLEDGER_BENCH_MQTT_BATCHED_READINGS", "400000"))
BATCH_SIZE = 1_000  # readings (or samples) per batched message
Topics = Callable[[str], dict[str, list[bytes]]]  # topic root -> payloads per topic
TOPICS = 8  # meters (and resources), one publisher process each
TIMEOUT_S = 600


def lines(count: int, first: int, batch: int, body: Any) -> list[bytes]:
    """`count` items for one topic, going back 15 minutes each from `first`, as `batch`-sized
    JSON arrays (batch > 1) or one object per line."""
    items = [body(first - 900 * k) for k in range(count)]
    if batch == 1:
        return [orjson.dumps(item) for item in items]
    return [orjson.dumps(items[i : i + batch]) for i in range(0, count, batch)]


def end_to_end(
    url: str,
    processes: int,
    topics_under: Topics,
    count_sql: str,
    expected: int,
    *,
    gate: tuple[str, dict[str, Any]] | None = None,
) -> float:
    """Items/s from the first publish until `count_sql` reaches `expected`; under a topic root
    of its own (the benchmark's earlier sessions stay on the broker, subscribed elsewhere).
    `gate`, a cheap query (and its parameters) true once the run can be complete, keeps a
    costly `count_sql` from running (and loading PostgreSQL) until then."""
    root = f"energy-cloud-bench-{uuid.uuid4().hex[:6]}"
    topics = topics_under(root)
    engine = make_engine(url)
    running = subscribers.start(url, root, processes)
    try:
        with engine.connect() as connection:
            before = connection.execute(text(count_sql)).scalar_one()
            connection.commit()
            started = time.perf_counter()
            publishers = publish(topics)
            deadline = time.monotonic() + TIMEOUT_S
            stored = before
            while stored - before < expected and time.monotonic() < deadline:
                time.sleep(0.02)
                if gate is None or connection.execute(text(gate[0]), gate[1]).scalar_one():
                    stored = connection.execute(text(count_sql)).scalar_one()
                connection.commit()
            elapsed = time.perf_counter() - started
        for publisher in publishers:
            publisher.wait(60)
        if stored - before < expected:
            raise RuntimeError(f"only {stored - before} of {expected} stored in {TIMEOUT_S} s")
    finally:
        subscribers.finish(running)
        engine.dispose()
    return expected / elapsed


def broker_limit(topics: dict[str, list[bytes]]) -> float:
    """Messages/s delivered at QoS 1 to one `mosquitto_sub` that discards them (from its
    SUBACK on: `-d` prints the protocol's packets before the payloads)."""
    total = sum(len(p) for p in topics.values())
    root = next(iter(topics)).split("/")[0]
    sink = subprocess.Popen(
        [
            *("stdbuf", "-oL", "mosquitto_sub"),  # line-buffered: the SUBACK line at once
            *("-h", BROKER[0], "-p", BROKER[1], "-q", "1", "-C", str(total), "-d"),
            *("-W", str(TIMEOUT_S), "-N", "-F", "%m", "-V", "mqttv5"),
            *("-D", "connect", "receive-maximum", "65535"),  # the broker queues 1,000 beyond
            *("-i", f"gl-bench-sink-{uuid.uuid4().hex[:8]}", "-t", f"{root}/#"),
        ],
        stdout=subprocess.PIPE,
    )
    assert sink.stdout is not None
    for line in sink.stdout:
        if b"SUBACK" in line:
            break
    drain = threading.Thread(target=sink.stdout.read, daemon=True)  # payloads, unread
    drain.start()
    started = time.perf_counter()
    publishers = publish(topics)
    sink.wait(TIMEOUT_S + 10)
    elapsed = time.perf_counter() - started
    for publisher in publishers:
        publisher.wait(60)
    return total / elapsed


def seed(url: str) -> tuple[list[str], list[str]]:
    """TOPICS meters and TOPICS batteries (behind the first meter): their ids."""
    engine = make_engine(url)
    with Session(engine) as session:
        owner = Account(address="0x" + "bd" * 20, roles=["participant"])
        session.add(owner)
        session.flush()
        meters = [
            register_meter(session, owner, MeterCreate(name=f"mqtt-bench-{i}", capacity_w=10_000))
            for i in range(TOPICS)
        ]
        resources = [
            register_resource(
                session,
                owner,
                ResourceCreate(
                    name=f"bench battery {i}",
                    kind=ResourceKind.BATTERY,
                    meter=meters[0].name,
                    grid_area="KR-SE-001",
                    capacity_w=5_000,
                    energy_capacity_wh=13_500,
                ),
            )
            for i in range(TOPICS)
        ]
        ids = [m.meter_id for m in meters], [str(r.id) for r in resources]
        session.commit()
    engine.dispose()
    return ids


def reading_topics(
    root: str, names: list[str], total: int, first: int, batch: int
) -> dict[str, list[bytes]]:
    per_topic = total // len(names)
    return {
        f"{root}/bench/smart-meter/{name}/reading": lines(
            per_topic, first, batch, lambda at: {"timestamp": iso(at), "importWh": 10}
        )
        for name in names
    }


def sample_topics(
    root: str, resources: list[str], total: int, first: int, batch: int
) -> dict[str, list[bytes]]:
    per_topic = total // len(resources)
    return {
        f"{root}/KR-SE-001/battery/{rid}/output": lines(
            per_topic, first, batch, lambda at: {"timestamp": iso(at), "value": 1.5, "unit": "kW"}
        )
        for rid in resources
    }


SAMPLES_SQL = "SELECT count(*) FROM der_telemetry"  # exact, but reads every stored sample
# the progress check's gate: the oldest `output` sample of every resource (each topic's last
# item) is stored; a lookup per resource, instead of counting the table every 20 ms
OLDEST_STORED = (
    "SELECT count(*) = cardinality(CAST(:resources AS uuid[])) FROM der_telemetry "
    "WHERE metric = 'output' AND at = :at AND resource_id = ANY(CAST(:resources AS uuid[]))"
)


def oldest_stored(resources: list[str], first: int, total: int) -> tuple[str, dict[str, Any]]:
    """`end_to_end`'s gate for `sample_topics(root, resources, total, first, batch)`."""
    oldest = first - 900 * (total // len(resources) - 1)
    return OLDEST_STORED, {"resources": resources, "at": oldest}


def compare(
    url: str, metric: str, topics_under: Topics, count_sql: str, expected: int
) -> Iterator[dict[str, Any]]:
    """`metric` with 1 and with 2 subscriber processes, then the better as `metric` itself."""
    rates: dict[int, float] = {}
    for processes in (1, 2):
        rates[processes] = end_to_end(url, processes, topics_under, count_sql, expected)
        suffix = "1_subscriber" if processes == 1 else "2_subscribers"
        yield {"metric": f"{metric}_{suffix}", "value": round(rates[processes]), "count": expected}
    best = max(rates, key=rates.__getitem__)
    yield {
        "metric": metric,
        "value": round(rates[best]),
        "subscribers": best,
        "ratio_2_vs_1": round(rates[2] / rates[1], 2),
    }


def readings_figures(url: str, meters: list[str]) -> Iterator[dict[str, Any]]:
    first = int(time.time()) // 900 * 900 - 900
    span = 900 * (max(BATCHED, SINGLE) // len(meters) + 10)  # distinct intervals per run
    starts = iter(range(first, 0, -span))

    def readings(count: int, batch: int) -> Topics:
        return lambda root: reading_topics(root, meters, count, next(starts), batch)

    single = 0.0
    for figure in compare(url, "mqtt_readings_per_s", readings(SINGLE, 1), READINGS_SQL, SINGLE):
        single = figure["value"]
        yield {**figure, "unit": "readings/s"} | (
            {"target": 30_000} if figure["metric"] == "mqtt_readings_per_s" else {}
        )
    broker = broker_limit(readings(SINGLE, 1)(f"energy-cloud-bench-{uuid.uuid4().hex[:6]}"))
    yield {"metric": "broker_messages_per_s", "value": round(broker), "unit": "messages/s"}
    yield {"metric": "mqtt_vs_broker_limit", "value": round(single / broker, 3), "unit": "x"}
    batched = 0.0
    for figure in compare(
        url, "mqtt_batched_readings_per_s", readings(BATCHED, BATCH_SIZE), READINGS_SQL, BATCHED
    ):
        batched = figure["value"]
        yield {**figure, "unit": "readings/s", "batch": BATCH_SIZE} | (
            {"target": 200_000} if figure["metric"] == "mqtt_batched_readings_per_s" else {}
        )
    copy = copy_limit(url, meters, next(starts))  # bench/meter_ingest.py's raw COPY
    yield {"metric": "copy_limit_readings_per_s", "value": round(copy), "unit": "readings/s"}
    yield {"metric": "batched_vs_copy_limit", "value": round(batched / copy, 3), "unit": "x"}


def telemetry_figures(
    url: str | None = None, resources: list[str] | None = None
) -> Iterator[dict[str, Any]]:
    """`telemetry_samples_per_s` (batched payloads) and one sample per message; in a scratch
    schema of their own unless given one (bench `vpp` calls this without)."""
    if url is None or resources is None:
        with own_broker(), scratch_schema() as scratch:
            _, ids = seed(scratch)
            yield from telemetry_figures(scratch, ids)
        return
    now = int(time.time()) // 900 * 900
    batched = end_to_end(
        url,
        2,
        lambda root: sample_topics(root, resources, BATCHED, now, BATCH_SIZE),
        SAMPLES_SQL,
        BATCHED,
        gate=oldest_stored(resources, now, BATCHED),
    )
    yield {
        "metric": "telemetry_samples_per_s",
        "value": round(batched),
        "unit": "samples/s",
        "target": 100_000,
        "batch": BATCH_SIZE,
        "subscribers": 2,
    }
    before = now - 900 * (BATCHED // len(resources))  # samples of their own: none a duplicate
    single = end_to_end(
        url,
        2,
        lambda root: sample_topics(root, resources, SINGLE, before, 1),
        SAMPLES_SQL,
        SINGLE,
        gate=oldest_stored(resources, before, SINGLE),
    )
    yield {
        "metric": "telemetry_single_samples_per_s",
        "value": round(single),
        "unit": "samples/s",
        "subscribers": 2,
    }
    yield {
        "metric": "telemetry_batched_vs_single",
        "value": round(batched / single, 2),
        "unit": "x",
    }


def run() -> Iterator[dict[str, Any]]:
    with own_broker(), scratch_schema() as url:
        meters, resources = seed(url)
        yield from readings_figures(url, meters)
        yield from telemetry_figures(url, resources)

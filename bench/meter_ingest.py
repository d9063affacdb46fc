"""Meter-reading ingestion into PostgreSQL: bulk REST, MQTT, and their reference points.

Figures, all from the same run on the same machine:
- `rest_readings_per_s`: readings stored per second through POST /v1/energy/readings/bulk
  (10,000-reading JSON batches, uvicorn with 4 workers, 4 concurrent clients);
- `batch10k_p99_ms`: p99 time from sending a 10,000-reading batch to its acknowledgement;
- `rest_readings_per_s_2w`, `batch10k_p99_ms_2w`: the same with 2 API workers (one per core),
  each batch on a connection of its own so that both workers serve (`rest`: the 4 keep-alive
  connections of the figures above mostly land on one worker);
- `rest_signed_readings_per_s`, `signed_batch10k_p99_ms`: the same with every reading signed
  by its meter's approved key (EIP-712), so each one's signer is recovered and checked;
- `mqtt_readings_per_s`: readings stored per second through Mosquitto (QoS 1, the benchmark's
  own, as in bench mqtt_ingest) and SUBSCRIBERS subscriber processes sharing one subscription,
  one reading per message, each meter publishing from a `mosquitto_pub` of its own;
- `copy_limit_readings_per_s`: the machine's limit for the row layout, a raw (text) COPY of
  the same rows into a row-per-reading table;
- `layout_limit_readings_per_s`: the limit of the storage layout the ingest uses now (interval
  runs, `reading_runs`, migration i16_reading_runs): a raw binary COPY of the same readings as
  runs (backend/meters/runs.py's encoding, bodies built before the clock starts) from CLIENTS
  connections at once, a commit per 10k readings, with the table's keys (what the ingest
  does for batches of new intervals, without HTTP, parsing, validating, encoding, or the
  (meter, day) locks and overlap check that replaced the exclusion constraint in session
  10), measured right before and right after the REST run (mean);
  `layout_ratio` = `rest_readings_per_s` / that (goal >= 0.7);
- `columnar_limit_readings_per_s`: the interval-runs layout's raw limit; the product now uses
  that layout, so it is `layout_limit_readings_per_s` (kept for the issue's history);
- `row_layout_limit_readings_per_s`: the same readings, the same way, as rows into the
  row-per-reading layout used before (one row per reading, keyed by meter and interval);
  `columnar_vs_layout` = the runs' limit / that (what the switch of storage bought at most);
- `rest_peak_rss_mb`: the largest peak RSS of one API worker after the REST runs (VmHWM);
- `orm_baseline_readings_per_s`: the naive way, one ORM insert and commit per reading;
- ratios of REST against both.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from coincurve import PrivateKey
from eth_utils import keccak, to_checksum_address
from sqlalchemy import Engine, make_url, text
from sqlmodel import Session

from backend.accounts.models import Account
from backend.accounts.security import create_access_token
from backend.chain.anvil import free_port
from backend.core.config import PROJECT_ROOT, Settings
from backend.core.db import make_engine
from backend.meters import runs as reading_runs
from backend.meters.batch import Columns
from backend.meters.models import MeterReading
from backend.meters.schemas import MeterApproval, MeterCreate
from backend.meters.services import approve_meter, register_meter
from backend.meters.signing import SignedValues, reading_digest
from backend.meters.trust import ReadingDomain, write_domain
from backend.meters.validation import iso, parse_timestamp
from bench import _mqtt
from bench._cpu import Accounting, backends_of, process_tree
from bench._database import scratch_schema
from bench._row_copy import copy_rows, encode

READINGS = int(os.environ.get("GRIDLEDGER_BENCH_READINGS", "200000"))
SIGNED_READINGS = int(os.environ.get("GRIDLEDGER_BENCH_SIGNED_READINGS", "50000"))
CHAIN_ID = 31337
REGISTRY = "0x" + "5e" * 20  # the EIP-712 domain's verifying contract (no chain is needed)
MQTT_READINGS = int(os.environ.get("GRIDLEDGER_BENCH_MQTT_READINGS", "50000"))
BATCH = 10_000
METERS = 100
CLIENTS = 4
API_WORKERS = int(os.environ.get("GRIDLEDGER_BENCH_API_WORKERS", str(CLIENTS)))
SUBSCRIBERS = int(os.environ.get("GRIDLEDGER_BENCH_MQTT_SUBSCRIBERS", "2"))  # make run's default


def batches(
    meter_ids: list[str], count: int, first_interval: int
) -> Iterator[list[dict[str, Any]]]:
    """`count` readings in batches of BATCH: each meter, consecutive 15-minute intervals back
    in time."""
    readings = []
    for i in range(count):
        meter = meter_ids[i % len(meter_ids)]
        start = first_interval - 900 * (i // len(meter_ids))
        readings.append(
            {
                "meterId": meter,
                "timestamp": iso(start),
                "intervalSeconds": 900,
                "importWh": 120 + i % 50,
                "exportWh": 300 + i % 700,
                "quality": "high",
            }
        )
        if len(readings) == BATCH:
            yield readings
            readings = []
    if readings:
        yield readings


def meter_key(index: int) -> PrivateKey:
    return PrivateKey(keccak(text=f"gridledger-bench-meter:{index}"))


def key_address(key: PrivateKey) -> str:
    return to_checksum_address(keccak(key.public_key.format(compressed=False)[1:])[-20:])


def sign(readings: list[dict[str, Any]], keys: dict[str, PrivateKey]) -> list[dict[str, Any]]:
    """The readings with their meters' signatures (libsecp256k1 directly: set-up speed)."""
    for reading in readings:
        values = SignedValues(
            bytes.fromhex(reading["meterId"][2:]),
            parse_timestamp(reading["timestamp"]),
            900,
            reading["importWh"],
            reading["exportWh"],
        )
        raw = keys[reading["meterId"]].sign_recoverable(
            reading_digest(values, CHAIN_ID, REGISTRY), hasher=None
        )
        reading["signature"] = "0x" + raw[:64].hex() + f"{raw[64] + 27:02x}"
    return readings


def start_api(
    url: str, deployment: Path, workers: int = API_WORKERS
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "GRIDLEDGER_DATABASE_URL": url,
        "GRIDLEDGER_ENVIRONMENT": "development",
        "GRIDLEDGER_DEPLOYMENT_FILE": str(deployment),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "backend.main:app",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=PROJECT_ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(base + "/openapi.json", timeout=1)
            return process, base
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("API did not start")


def peak_rss_mb(parent: int) -> float:
    """The largest peak RSS (VmHWM) among `parent` and its child processes, in MB."""
    peak = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, ppid = stat.parent.name, int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid != parent and int(pid) != parent:
                continue
            for line in (stat.parent / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile
    return peak / 1024


RSS_PEAKS: list[float] = []
WARMUP_LATENCIES: list[float] = []


@dataclass
class RestRun:
    """A REST run's figures: readings stored per second, p99 ms per batch, readings stored,
    and the CPU seconds each party used while the batches were sent (the API's processes, the
    PostgreSQL backends of its connections, this process: the senders)."""

    rate: float
    p99_ms: float
    stored: int
    api_cpu_s: float
    postgres_cpu_s: float
    client_cpu_s: float
    seconds: float

    def per_reading_us(self, cpu_s: float) -> float:
        return round(cpu_s / self.stored * 1e6, 3) if self.stored else 0.0

    def figures(self, suffix: str) -> Iterator[dict[str, Any]]:
        """CPU per reading of each party and the cores they kept busy (2 on this machine)."""
        for party, cpu_s in (
            ("api", self.api_cpu_s),
            ("postgres", self.postgres_cpu_s),
            ("client", self.client_cpu_s),
        ):
            yield {
                "metric": f"{party}_cpu_us_per_reading{suffix}",
                "value": self.per_reading_us(cpu_s),
                "unit": "us",
            }
        busy = (self.api_cpu_s + self.postgres_cpu_s + self.client_cpu_s) / self.seconds
        yield {"metric": f"cores_busy{suffix}", "value": round(busy, 2), "unit": "cores"}


def rest(
    url: str,
    bodies: list[bytes],
    headers: dict[str, str],
    deployment: Path,
    workers: int = API_WORKERS,
    *,
    warmup: list[bytes],
    spread: bool = False,
) -> RestRun:
    """Readings stored per second, p99 ms per batch, readings stored and CPU per party, with
    CLIENTS senders on keep-alive connections.

    The workers share one listening socket and a worker's event loop accepts every connection
    waiting, so CLIENTS keep-alive connections opened at once mostly land on one worker (seen
    with 4 workers: 20 of 20 batches served by one process): the historical figure is in
    effect one worker's. With `spread` each batch goes on a connection of its own
    (`connection: close`; a 10k batch is ~1.3 MB, a connect ~0.1 ms), accepted by a worker
    free to, as a crowd of senders' connections would be.

    Before the clock starts, the CLIENTS senders store the `warmup` batches (new intervals,
    CLIENTS of them at once): a freshly started worker opens a pool connection per concurrent
    batch, and each new PostgreSQL backend loads the runs table's catalog, indexes and
    constraint on its first COPY; a head-end's stream is served by an API that has been
    running. Their latencies are kept apart (WARMUP_LATENCIES), not in the p99."""
    application_name = f"gl-bench-ingest-{uuid.uuid4().hex[:8]}"
    api_url = make_url(url).update_query_dict({"application_name": application_name})
    process, base = start_api(api_url.render_as_string(hide_password=False), deployment, workers)
    api = Accounting(lambda: process_tree(process.pid))
    postgres = Accounting(backends_of(url, application_name))
    latencies: list[float] = []
    stored = 0
    connection = {"connection": "close"} if spread else {}
    try:
        with httpx.Client(
            base_url=base,
            timeout=120,
            headers={**headers, "content-type": "application/json", **connection},
        ) as client:
            client.post("/v1/energy/readings/bulk", content=b"[]")  # routes and auth warm

            def send(body: bytes, timed: list[float]) -> int:
                t0 = time.perf_counter()
                reply = client.post("/v1/energy/readings/bulk", content=body)
                timed.append(time.perf_counter() - t0)
                reply.raise_for_status()
                return int(reply.json()["accepted"])

            with ThreadPoolExecutor(CLIENTS) as pool:  # not counted: see the docstring
                list(pool.map(send, warmup, [WARMUP_LATENCIES] * len(warmup)))
            api.start()
            postgres.start()
            client_cpu = time.process_time()
            started = time.perf_counter()
            with ThreadPoolExecutor(CLIENTS) as pool:
                stored = sum(pool.map(send, bodies, [latencies] * len(bodies)))
            elapsed = time.perf_counter() - started
            client_cpu = time.process_time() - client_cpu
            api.stop()
            postgres.stop()
        RSS_PEAKS.append(peak_rss_mb(process.pid))
    finally:
        process.terminate()
        process.wait(120)  # a loaded machine takes its time to stop 4 workers
    p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) >= 2 else latencies[0]
    return RestRun(
        stored / elapsed,
        p99 * 1000,
        stored,
        api.seconds,
        postgres.seconds,
        client_cpu,
        elapsed,
    )


def mqtt_path(url: str, first_interval: int, names: list[str]) -> float:
    """Readings/s from the first publish until all are stored, with SUBSCRIBERS processes of
    one shared subscription, on a Mosquitto of the benchmark's own (as bench mqtt_ingest: the
    machine's is shared with everything else that runs), each meter publishing its readings
    (one message each, QoS 1) from a `mosquitto_pub` of its own, as devices do."""
    per_meter = MQTT_READINGS // len(names)
    root = f"energy-cloud-bench-{uuid.uuid4().hex[:6]}"
    topics = {
        f"{root}/bench/smart-meter/{name}/reading": [
            orjson.dumps(
                {"timestamp": iso(first_interval - 900 * k), "importWh": 10, "exportWh": 20}
            )
            for k in range(per_meter)
        ]
        for name in names
    }
    expected = per_meter * len(names)
    with _mqtt.own_broker():
        subscribers = _mqtt.start(url, root, SUBSCRIBERS)  # each run its own ids, group, root
        engine = make_engine(url)
        try:
            with engine.connect() as connection:
                before = connection.execute(text(_mqtt.READINGS_SQL)).scalar_one()
                connection.commit()
                started = time.perf_counter()
                publishers = _mqtt.publish(topics)
                deadline = time.monotonic() + 600
                stored = 0
                while stored < expected and time.monotonic() < deadline:
                    time.sleep(0.02)
                    stored = connection.execute(text(_mqtt.READINGS_SQL)).scalar_one() - before
                    connection.commit()
                elapsed = time.perf_counter() - started
            for publisher in publishers:
                publisher.wait(60)
        finally:
            _mqtt.finish(subscribers)  # stopped, and their persistent sessions ended
            engine.dispose()
    if stored < expected:  # not a rate: readings lost
        print(f"bench: only {stored} of {expected} MQTT readings stored in 600 s", file=sys.stderr)
    return stored / elapsed


def copy_limit(url: str, meter_ids: list[str], first_interval: int) -> float:
    engine = make_engine(url)
    now = datetime.now(UTC)
    rows = []
    for b in batches(meter_ids, READINGS, first_interval):
        for r in b:
            start = int(datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")).timestamp())
            rows.append(
                (
                    r["meterId"],
                    start,
                    900,
                    r["importWh"],
                    r["exportWh"],
                    r["quality"],
                    0,
                    "bench",
                    now,
                )
            )
    with engine.connect() as connection:
        driver = connection.connection.driver_connection
        if driver is None:
            raise RuntimeError("no psycopg connection under the SQLAlchemy one")
        driver.execute(ROW_TABLE)
        driver.commit()
        started = time.perf_counter()
        with driver.cursor().copy(
            "COPY row_readings (meter_id, interval_start, interval_s, import_wh, export_wh, "
            "quality, revision, source, received_at) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        driver.commit()
        elapsed = time.perf_counter() - started
    engine.dispose()
    return len(rows) / elapsed


ROW_TABLE = (
    "CREATE TABLE IF NOT EXISTS row_readings (meter_id varchar(66) NOT NULL, "
    "interval_start bigint NOT NULL, interval_s integer NOT NULL, import_wh bigint, "
    "export_wh bigint, voltage_v double precision, current_a double precision, "
    "power_factor double precision, quality varchar(16), revision integer NOT NULL, "
    "source varchar(16) NOT NULL, verified boolean NOT NULL DEFAULT false, "
    "signature varchar(132), signer varchar(42), received_at timestamptz NOT NULL, "
    "PRIMARY KEY (meter_id, interval_start))"
)  # the row-per-reading layout before migration i16_reading_runs
COPY_ROWS = copy_rows("row_readings")


def bench_columns(b: list[dict[str, Any]]) -> Columns:
    """A batch as the validated columns the ingest stores."""
    rows = Columns()
    for i, r in enumerate(b):
        rows.append(
            {
                "idx": i,
                "meter_id": r["meterId"],
                "interval_start": parse_timestamp(r["timestamp"]),
                "import_wh": r["importWh"],
                "export_wh": r["exportWh"],
                "voltage_v": None,
                "current_a": None,
                "power_factor": None,
                "quality": r["quality"],
            },
            None,
        )
    return rows


def layout_limit(url: str, meter_ids: list[str], first_interval: int) -> float:
    """The layout's raw limit: the same readings, every column the ingest writes, as ready
    binary COPY bodies of runs (built before the clock starts) sent by CLIENTS connections at
    once, 10k readings and a commit per COPY, as the REST path's CLIENTS workers do; every
    reading is checked to be stored once."""
    received = datetime.now(UTC)
    bodies = []
    for b in batches(meter_ids, READINGS, first_interval):
        rows = bench_columns(b)
        bodies.append(
            b"".join(reading_runs.encode(reading_runs.Runs(rows), rows, "bench", received))
        )
    engine = make_engine(url)
    count = text("SELECT coalesce(sum(slots), 0) FROM reading_runs")
    with engine.connect() as connection:
        before = connection.execute(count).scalar_one()
    try:
        elapsed = copy_seconds(engine, reading_runs.COPY_RUNS, bodies)
        with engine.connect() as connection:
            stored = connection.execute(count).scalar_one() - before
    finally:
        engine.dispose()
    if stored != READINGS:
        raise RuntimeError(f"the runs hold {stored} of {READINGS} readings")
    return READINGS / elapsed


def row_layout_limit(url: str, meter_ids: list[str], first_interval: int) -> float:
    """`layout_limit` into the row-per-reading layout used before (ROW_TABLE)."""
    received = datetime.now(UTC)
    bodies = []
    for b in batches(meter_ids, READINGS, first_interval):
        parts = encode(bench_columns(b), "bench", received)
        if parts is None:
            raise RuntimeError("the bench's rows have one layout")
        bodies.append(b"".join(parts))
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text(ROW_TABLE))
    try:
        return READINGS / copy_seconds(engine, COPY_ROWS, bodies)
    finally:
        engine.dispose()


def copy_seconds(engine: Engine, statement: str, bodies: list[bytes]) -> float:
    """Seconds to COPY `bodies` (ready binary COPY bodies) with `statement` from CLIENTS
    connections at once, a commit per body."""

    def send(share: list[bytes]) -> None:
        with engine.connect() as connection:
            driver = connection.connection.driver_connection
            if driver is None:
                raise RuntimeError("no psycopg connection under the SQLAlchemy one")
            for body in share:
                with driver.cursor().copy(statement) as copy:
                    copy.write(body)
                driver.commit()

    shares = [bodies[k::CLIENTS] for k in range(CLIENTS)]
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(send, shares))
    return time.perf_counter() - started


def orm_baseline(
    url: str, meter_ids: list[str], first_interval: int, limit: int = 3_000, max_seconds: float = 20
) -> float:
    engine = make_engine(url)
    done = 0
    started = time.perf_counter()
    with Session(engine) as session:
        for b in batches(meter_ids, limit, first_interval):
            for r in b:
                start = int(
                    datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")).timestamp()
                )
                session.add(
                    MeterReading(
                        meter_id=r["meterId"],
                        interval_start=start,
                        import_wh=r["importWh"],
                        export_wh=r["exportWh"],
                        source="bench",
                    )
                )
                session.commit()
                done += 1
                if time.perf_counter() - started > max_seconds:
                    break
    elapsed = time.perf_counter() - started
    engine.dispose()
    return done / elapsed


def run() -> Iterator[dict[str, Any]]:
    with scratch_schema() as url:
        engine = make_engine(url)
        with Session(engine) as session:
            owner = Account(address="0x" + "be" * 20, roles=["participant", "operator"])
            session.add(owner)
            session.flush()
            meters = [
                register_meter(
                    session, owner, MeterCreate(name=f"bench-meter-{i}", capacity_w=10_000)
                )
                for i in range(METERS)
            ]
            keys = {m.meter_id: meter_key(i) for i, m in enumerate(meters)}
            for meter in meters:
                approve_meter(
                    session,
                    owner,
                    meter,
                    MeterApproval(capacity_w=10_000, signing_key=key_address(keys[meter.meter_id])),
                )
            session.commit()
            meter_ids = [m.meter_id for m in meters]
            names = [m.name for m in meters]
            token = create_access_token(owner.id, owner.roles, Settings(_env_file=None))
        engine.dispose()
        now = int(time.time()) // 900 * 900
        # distinct interval ranges per measurement
        span = 900 * (max(READINGS, MQTT_READINGS, SIGNED_READINGS, CLIENTS * BATCH) // METERS + 10)
        layout_before = layout_limit(url, meter_ids, now - 900 - 5 * span)
        headers = {"Authorization": f"Bearer {token}"}
        deployment = write_domain(
            Path(tempfile.mkdtemp()) / "deployment.json", ReadingDomain(CHAIN_ID, REGISTRY)
        )
        bodies = [orjson.dumps(b) for b in batches(meter_ids, READINGS, now - 900)]

        def warmup(k: int) -> list[bytes]:  # CLIENTS batches of new intervals
            first = now - 900 - k * span
            return [orjson.dumps(b) for b in batches(meter_ids, CLIENTS * BATCH, first)]

        one = rest(url, bodies, headers, deployment, warmup=warmup(8))
        rest_rate, p99_ms, stored = one.rate, one.p99_ms, one.stored
        two_bodies = [orjson.dumps(b) for b in batches(meter_ids, READINGS, now - 900 - 7 * span)]
        two = rest(url, two_bodies, headers, deployment, workers=2, warmup=warmup(9), spread=True)
        rest_2w_rate, p99_2w_ms = two.rate, two.p99_ms
        layout_rate = (layout_before + layout_limit(url, meter_ids, now - 900 - 6 * span)) / 2
        row_layout_rate = (
            row_layout_limit(url, meter_ids, now - 900 - 5 * span)
            + row_layout_limit(url, meter_ids, now - 900 - 6 * span)
        ) / 2
        yield {
            "metric": "rest_readings_per_s",
            "value": round(rest_rate),
            "unit": "readings/s",
            "target": 500_000,
            "readings": stored,
        }
        yield {"metric": "batch10k_p99_ms", "value": round(p99_ms, 1), "unit": "ms", "target": 200}
        yield {
            "metric": "rest_readings_per_s_2w",
            "value": round(rest_2w_rate),
            "unit": "readings/s",
            "workers": 2,
        }
        yield {"metric": "batch10k_p99_ms_2w", "value": round(p99_2w_ms, 1), "unit": "ms"}
        yield from one.figures("")
        yield from two.figures("_2w")
        yield {
            "metric": "layout_limit_readings_per_s",
            "value": round(layout_rate),
            "unit": "readings/s",
            "layout": "runs",
        }
        yield {
            "metric": "columnar_limit_readings_per_s",
            "value": round(layout_rate),
            "unit": "readings/s",
        }
        yield {
            "metric": "row_layout_limit_readings_per_s",
            "value": round(row_layout_rate),
            "unit": "readings/s",
        }
        gain = round(layout_rate / row_layout_rate, 2)
        yield {"metric": "columnar_vs_layout", "value": gain, "unit": "x"}
        yield {
            "metric": "layout_ratio",
            "value": round(rest_rate / layout_rate, 3),
            "unit": "x",
            "target": 0.7,
        }
        signed_bodies = [
            orjson.dumps(sign(b, keys))
            for b in batches(meter_ids, SIGNED_READINGS, now - 900 - 4 * span)
        ]
        signed = rest(url, signed_bodies, headers, deployment, warmup=warmup(10))
        signed_rate, signed_p99_ms, signed_stored = signed.rate, signed.p99_ms, signed.stored
        yield {
            "metric": "rest_signed_readings_per_s",
            "value": round(signed_rate),
            "unit": "readings/s",
            "readings": signed_stored,
        }
        yield {"metric": "signed_batch10k_p99_ms", "value": round(signed_p99_ms, 1), "unit": "ms"}
        yield {"metric": "rest_peak_rss_mb", "value": round(max(RSS_PEAKS), 1), "unit": "MB"}
        mqtt_rate = mqtt_path(url, now - 900 - span, names)
        yield {
            "metric": "mqtt_readings_per_s",
            "value": round(mqtt_rate),
            "unit": "readings/s",
            "readings": MQTT_READINGS,
            "subscribers": SUBSCRIBERS,
            "publishers": METERS,
        }
        copy_rate = copy_limit(url, meter_ids, now - 900 - 2 * span)
        yield {
            "metric": "copy_limit_readings_per_s",
            "value": round(copy_rate),
            "unit": "readings/s",
        }
        orm_rate = orm_baseline(url, meter_ids, now - 900 - 3 * span)
        yield {
            "metric": "orm_baseline_readings_per_s",
            "value": round(orm_rate),
            "unit": "readings/s",
        }
        yield {
            "metric": "rest_vs_copy_limit",
            "value": round(rest_rate / copy_rate, 3),
            "unit": "x",
        }
        yield {
            "metric": "rest_vs_orm_baseline",
            "value": round(rest_rate / orm_rate, 1),
            "unit": "x",
        }
        yield {
            "metric": "mqtt_vs_orm_baseline",
            "value": round(mqtt_rate / orm_rate, 1),
            "unit": "x",
        }

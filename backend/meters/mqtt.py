"""MQTT ingestion: `python -m backend.meters.mqtt` subscribes (QoS 1) to
`energy-cloud/{region}/{deviceType}/{deviceId}/{metric}` and feeds the same ingestion core
as the REST API, in batches.

Metrics: `reading` (a full WIA-ENE-014 reading), `consumption` (importWh) and `generation`
(exportWh), the last two as `{"timestamp", "value", "unit"}` or as a reading. The topic's
`deviceId` is the meter (name or bytes32 id): a message can only carry data of the meter
whose topic it is published on, so a broker ACL of `pattern write energy-cloud/+/+/%u/+`
with per-device logins confines each device to its own meter. `output`, `soc` and `status`
on a DER's topic (its deviceId a resource id) go to the DER telemetry store
(backend/resources/telemetry.py); other metrics are ignored.

Batched payloads: a message may hold a JSON array of readings of the topic's meter (a head-end
system's upload; each element the same schema as a single reading) or of a resource's samples;
a bad element is a dead letter of its own ("element 7 of 50: ...") and the rest are stored.

Delivery: manual acknowledgement. Messages are collected for up to `mqtt_batch_linger_ms` or
`mqtt_batch_max_messages`, stored in one pass and committed, and only then acknowledged; the
session is persistent, so a crash redelivers instead of losing readings, and redelivered
readings are idempotent duplicates. Several processes (`mqtt_subscribers`, distinct client ids
`{mqtt_client_id}-{index}`) share one subscription (`$share/{mqtt_shared_group}/...`).
A member that is down keeps its share: Mosquitto 2.0 deals a shared subscription's messages
round-robin to every member with a session, connected or not, and they wait in the stopped
member's session until a process with its index returns (a restart loses nothing; its share
stalls meanwhile, and the machine's broker drops what exceeds `max_queued_messages`). So run the
same indexes again after a stop, and when running fewer processes than before, retire the
indexes no longer run: `python -m backend.meters.mqtt retire --index N` drains such a member's
session into the store and ends it (`Retiree`).

Poison: a message that cannot be processed (not JSON, wrong types, a rejected reading, or
anything that raises while processing it) is recorded as a dead letter (backend/deadletters)
with its reason and then acknowledged, so the broker never redelivers it and the subscriber
keeps running. A database outage is not poison: nothing is acknowledged, the batch is retried
with back-off.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import logging
import os
import signal
import socket
import sys
import threading
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast

import msgspec
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import exc as sa_exc
from sqlmodel import Session

from backend.chain import clock
from backend.core.config import Settings, get_settings
from backend.core.db import make_engine
from backend.core.errors import ServiceUnavailable
from backend.core.startup import settings_or_exit
from backend.core.tls import service_mqtt_client
from backend.deadletters import services as dead_letters
from backend.health.heartbeats import MQTT, Heartbeat
from backend.meters.batch import PlainReading
from backend.meters.mqtt_client import BufferedClient
from backend.meters.schemas import IngestResult
from backend.meters.services import ingest_plain, ingest_readings
from backend.meters.validation import shown
from backend.resources import telemetry
from backend.resources.errors import TelemetryRejected

log = logging.getLogger("gridledger.mqtt")
METRIC_FIELDS = {"consumption": "importWh", "generation": "exportWh"}
T = TypeVar("T")


class MessageRejected(Exception):
    pass


class StoreUnavailable(Exception):
    """The database could not be reached: the batch stays unacknowledged, to be retried."""


def is_outage(exc: BaseException) -> bool:
    """A database that is down or unreachable, or the chain RPC that `clock=chain` reads "now"
    from (retry later), as opposed to a message that makes processing fail (poison)."""
    return isinstance(
        exc,
        ServiceUnavailable
        | sa_exc.OperationalError
        | sa_exc.InterfaceError
        | sa_exc.DisconnectionError
        | sa_exc.TimeoutError,
    ) or (isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated)


# (message id, QoS, topic, payload) of a received message
Message = tuple[int, int, str, bytes | bytearray]


def topic_device(topic: str, root: str) -> tuple[str, str]:
    """(deviceId, metric) of a topic under `root`; MessageRejected for any other shape."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != root:
        raise MessageRejected(
            f"topic {topic!r} is not {root}/{{region}}/{{deviceType}}/{{deviceId}}/{{metric}}"
        )
    return parts[3], parts[4]


def as_reading(body: object, metric: str, device: str) -> dict[str, Any]:
    """One reading object of a message on `device`'s `metric` topic, as the ingest core takes
    it (`value` of consumption/generation mapped to importWh/exportWh, meterId the topic's)."""
    if not isinstance(body, dict):
        raise MessageRejected("a reading must be a JSON object")
    if metric in METRIC_FIELDS and "value" in body:
        body = {k: v for k, v in body.items() if k != "value"} | {
            METRIC_FIELDS[metric]: body["value"]
        }
    claimed = body.get("meterId", device)
    if "meterId" not in body:
        body = {**body, "meterId": device}
    if claimed != device:
        raise MessageRejected(
            f"meterId {shown(claimed, 80)} differs from the topic's device {device!r}"
        )
    return body


def reading_from_message(
    topic: str, payload: bytes | bytearray, root: str
) -> dict[str, Any] | None:
    """The reading a single-reading message carries, None for metrics we do not ingest."""
    readings = readings_from_message(topic, payload, root)
    if readings is None:
        return None
    if isinstance(readings, Batch):
        raise MessageRejected("payload must be a JSON object")
    return readings


class Batch(list[Any]):
    """The elements of a batched message (a JSON array of readings, for head-end systems):
    each is a reading dict, or the MessageRejected that makes that element alone a dead letter."""


@dataclass(frozen=True)
class Carrier:
    """Where a reading or sample came from: a message, or one element of a batched message."""

    message: Message
    element: int | None = None  # position in the batched message
    size: int = 0  # elements in the batched message

    @property
    def payload(self) -> bytes:
        """What a dead letter keeps: the message, or only the element (as JSON) when it is one."""
        if self.element is None:
            return bytes(self.message[3])
        return orjson.dumps(orjson.loads(self.message[3])[self.element])

    @property
    def where(self) -> str:
        return "" if self.element is None else f"element {self.element} of {self.size}: "


def readings_from_message(
    topic: str, payload: bytes | bytearray, root: str, max_elements: int = 100_000
) -> dict[str, Any] | Batch | None:
    """The reading (a JSON object) or readings (a JSON array of them, `Batch`) a message
    carries; None for metrics we do not ingest. MessageRejected when the whole message is bad."""
    device, metric = topic_device(topic, root)
    if metric not in ("reading", *METRIC_FIELDS):
        return None
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise MessageRejected(f"invalid JSON: {exc}") from None
    if not isinstance(body, list):
        if not isinstance(body, dict):
            raise MessageRejected("payload must be a JSON object or an array of objects")
        return as_reading(body, metric, device)
    if not body or len(body) > max_elements:
        raise MessageRejected(f"a batched message holds 1 to {max_elements} readings")
    batch = Batch()
    for element in body:
        try:
            batch.append(as_reading(element, metric, device))
        except MessageRejected as exc:
            batch.append(exc)
    return batch


class TopicReading(PlainReading, rename="camel", kw_only=True):
    """A plain reading (batch.PlainReading) on its meter's topic: `meterId` may be left out."""

    meter_id: str | msgspec.UnsetType = msgspec.UNSET  # type: ignore[assignment]

    def as_dict(self) -> dict[str, Any]:
        return {
            key: value
            for key, value in zip(TOPIC_WIRE_NAMES, msgspec.structs.astuple(self), strict=True)
            if value is not None and value is not msgspec.UNSET
        }


TOPIC_WIRE_NAMES = TopicReading.__struct_encode_fields__
_DECODE_ONE = msgspec.json.Decoder(TopicReading)
_DECODE_MANY = msgspec.json.Decoder(list[TopicReading])


def plain_readings(
    device: str, metric: str, payload: bytes | bytearray, max_elements: int
) -> tuple[list[TopicReading], bool] | None:
    """The readings of a `reading` message all of whose readings are plain and of the topic's
    meter, decoded typed, and whether it was a batched message; None for any other message
    (it then goes the general way, `readings_from_message`, with the same outcome)."""
    if metric != "reading":
        return None
    batched = payload.lstrip()[:1] == b"["
    try:
        found = _DECODE_MANY.decode(payload) if batched else [_DECODE_ONE.decode(payload)]
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    if not 0 < len(found) <= max_elements:
        return None
    for reading in found:
        if reading.meter_id is msgspec.UNSET:
            reading.meter_id = device
        elif reading.meter_id != device:
            return None
    return found, batched


@dataclass
class Segments(Generic[T]):
    """Items taken from a batch's messages (readings, samples) and, per message, where its items
    start: the carrier (message, or element) of a rejected item is found only when one is."""

    items: list[T] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    # per message: the message, its size when batched, each item's element when some were left
    sources: list[tuple[Message, int | None, list[int] | None]] = field(default_factory=list)

    def add(
        self, message: Message, items: list[T], size: int | None, elements: list[int] | None = None
    ) -> None:
        self.starts.append(len(self.items))
        self.sources.append((message, size, elements))
        self.items += items

    def carrier(self, position: int) -> Carrier:
        at = bisect_right(self.starts, position) - 1
        message, size, elements = self.sources[at]
        if size is None:
            return Carrier(message)
        offset = position - self.starts[at]
        return Carrier(message, offset if elements is None else elements[offset], size)


def add_samples(
    segments: Segments[telemetry.Sample],
    message: Message,
    found: telemetry.Sample | list[telemetry.Sample | TelemetryRejected],
) -> list[tuple[Carrier, str]]:
    """Add what a telemetry message carries to `segments`; its rejected elements with reasons."""
    if not isinstance(found, list):
        segments.add(message, [found], None)
        return []
    good = [item for item in found if not isinstance(item, TelemetryRejected)]
    if len(good) == len(found):
        segments.add(message, good, len(found))
        return []
    elements = [k for k, item in enumerate(found) if not isinstance(item, TelemetryRejected)]
    segments.add(message, good, len(found), elements)
    return [
        (Carrier(message, k, len(found)), str(item))
        for k, item in enumerate(found)
        if isinstance(item, TelemetryRejected)
    ]


def sort_out(
    message: Message, found: Any, items: list[Any], carriers: list[Carrier]
) -> list[tuple[Carrier, str]]:
    """Append what `message` carries (one item, or each element of a batched message) to
    `items` and where each came from to `carriers`; the rejected elements with their reasons."""
    if not isinstance(found, list):
        items.append(found)
        carriers.append(Carrier(message))
        return []
    rejected = []
    for element, item in enumerate(found):
        carrier = Carrier(message, element, len(found))
        if isinstance(item, Exception):
            rejected.append((carrier, str(item)))
        else:
            items.append(item)
            carriers.append(carrier)
    return rejected


@dataclass
class Subscriber:
    settings: Settings = field(default_factory=get_settings)
    client_id: str = "gridledger-ingest"
    batch_max: int = 0  # messages per commit; 0: settings.mqtt_batch_max_messages
    flush_interval_s: float = 0.05  # idle poll, and the first back-off step
    linger_s: float | None = None  # None: settings.mqtt_batch_linger_ms
    now: Callable[[], int] | None = None  # injectable clock (tests); None: clock.now(settings)
    pending: list[Message] = field(default_factory=list)  # received, not yet stored
    totals: dict[str, int] = field(
        default_factory=lambda: {"accepted": 0, "duplicate": 0, "corrected": 0, "rejected": 0}
    )
    outages: int = 0  # consecutive failed attempts to reach the database

    def __post_init__(self) -> None:
        self.batch_max = self.batch_max or self.settings.mqtt_batch_max_messages
        if self.linger_s is None:
            self.linger_s = self.settings.mqtt_batch_linger_ms / 1_000
        self.first_pending_at = 0.0  # monotonic time the oldest pending message arrived
        self.engine = make_engine(self.settings.database_url)
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.subscribed = threading.Event()
        self.disconnected = threading.Event()  # paho wrote our DISCONNECT (and what was queued)
        client = cast(
            BufferedClient,
            service_mqtt_client(
                self.settings, self.client_id, manual_ack=True, factory=BufferedClient
            ),
        )
        client.on_connect = self.on_connect
        client.on_subscribe = self.on_subscribe
        client.on_disconnect = self.on_disconnect
        client.on_message = self.on_message
        client.on_raw_message = self.on_raw_message
        self.client = client

    @property
    def topic(self) -> str:
        """A shared subscription when a group is set: run N subscriber processes (distinct
        client ids) and the broker spreads the messages among them."""
        topic = f"{self.settings.mqtt_topic_root}/+/+/+/+"
        group = self.settings.mqtt_shared_group
        return f"$share/{group}/{topic}" if group else topic

    def on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.connected(client, flags, reason_code)

    def connected(self, client: mqtt.Client, flags: mqtt.ConnectFlags, code: ReasonCode) -> None:
        """After the CONNACK: subscribe (again: a resumed session has it, a new one not)."""
        client.subscribe(self.topic, options=mqtt.SubscribeOptions(qos=1))

    def on_disconnect(self, *_: object) -> None:
        self.disconnected.set()

    def on_subscribe(self, *_: object) -> None:
        """A shared subscription keeps nothing for a group before its first member subscribed:
        say when we are (the benchmark waits for it)."""
        log.info("subscribed to %s as %s", self.topic, self.client_id)
        self.subscribed.set()

    def on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        """Queue the message. Raising here would end paho's network thread, so anything odd is
        logged and acknowledged (Mosquitto checks topics are UTF-8: this is defensive)."""
        try:
            entry = (message.mid, message.qos, message.topic, message.payload)
        except Exception:
            log.exception("unreadable message %s; acknowledged and dropped", message.mid)
            if message.qos:
                client.ack(message.mid, message.qos)
            return
        with self.lock:
            if not self.pending:
                self.first_pending_at = time.monotonic()
            self.pending.append(entry)

    def on_raw_message(self, mid: int, qos: int, topic: bytes, payload: bytes | bytearray) -> None:
        """`on_message` without paho's MQTTMessage (BufferedClient's fast path)."""
        try:
            entry = (mid, qos, topic.decode(), payload)
        except UnicodeDecodeError:
            log.warning("message %s with a topic not UTF-8; acknowledged and dropped", mid)
            if qos:
                self.client.ack_all([mid])
            return
        with self.lock:
            if not self.pending:
                self.first_pending_at = time.monotonic()
            self.pending.append(entry)

    def clock_now(self) -> int:
        """The configured clock's now (unix s): chain time under `GRIDLEDGER_CLOCK=chain`,
        as the readings' ingest judges them; the injected `now` when set."""
        return self.now() if self.now is not None else clock.now(self.settings)

    def due_in(self) -> float:
        """Seconds until the next batch is due: none once `batch_max` messages wait or the
        oldest has waited `linger_s` (batched commits), the idle poll when nothing waits."""
        with self.lock:
            if not self.pending:
                return self.flush_interval_s
            if len(self.pending) >= self.batch_max:
                return 0.0
            return max(0.0, (self.linger_s or 0.0) - (time.monotonic() - self.first_pending_at))

    def flush(self) -> IngestResult | None:
        """Store the next batch, dead-letter what cannot be processed, then acknowledge it.
        StoreUnavailable (batch put back, nothing acknowledged) when the database is down."""
        with self.lock:
            batch, self.pending = self.pending[: self.batch_max], self.pending[self.batch_max :]
            self.first_pending_at = 0.0  # what is left waited long enough: due at once
        if not batch:
            return None
        try:
            try:
                result = self.process(batch)
            except Exception as exc:
                if is_outage(exc):
                    raise
                log.exception("batch of %d failed; retrying its messages one by one", len(batch))
                result = self.process_singly(batch)
        except Exception as exc:
            if not is_outage(exc):
                raise
            with self.lock:
                self.pending[:0] = batch
                self.first_pending_at = 0.0
            raise StoreUnavailable(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        self.outages = 0
        self.client.ack_all(mid for mid, qos, _, _ in batch if qos)  # stored or dead-lettered
        return result

    def process(self, batch: list[Message]) -> IngestResult | None:
        """Store the batch's readings and telemetry in one pass (readings in chunks of at most
        `meter_max_batch`); every message, or element of a batched message, that is not JSON or
        whose reading or sample is rejected becomes a dead letter of its own."""
        root, limit = self.settings.mqtt_topic_root, self.settings.meter_max_batch
        readings: list[dict[str, Any]] = []
        carriers: list[Carrier] = []  # where each reading came from
        poison: list[tuple[Carrier, str]] = []
        samples: Segments[telemetry.Sample] = Segments()  # DER output/soc/status (resources)
        plain: Segments[TopicReading] = Segments()
        general: list[Message] = []
        for message in batch:  # plain readings decoded typed; the others the general way
            try:
                device, metric = topic_device(message[2], root)
                decoded = plain_readings(device, metric, message[3], limit)
            except MessageRejected as exc:
                poison.append((Carrier(message), str(exc)))
                continue
            if decoded is None:
                general.append(message)
            else:
                typed, batched = decoded
                plain.add(message, typed, len(typed) if batched else None)
        if any(topic_device(m[2], root)[1] in ("reading", *METRIC_FIELDS) for m in general):
            general, plain = batch, Segments()  # mixed: all the general way, as before
            poison = []
        stamped: datetime | None = None  # a sample without a timestamp: the batch's "now"
        for message in general:
            try:
                found = readings_from_message(message[2], message[3], root, limit)
                sample = None
                if found is None:
                    stamped = stamped or datetime.fromtimestamp(self.clock_now(), UTC)
                    sample = telemetry.samples_from_message(
                        message[2], message[3], root, stamped, max_elements=limit
                    )
            except (MessageRejected, TelemetryRejected) as exc:
                poison.append((Carrier(message), str(exc)))
                continue
            if found is not None:
                poison += sort_out(message, found, readings, carriers)
            elif sample is not None:
                poison += add_samples(samples, message, sample)
        result = None
        with Session(self.engine) as session:
            if samples.items:
                kept = telemetry.store_samples(session, samples.items, settings=self.settings)
                self.totals["telemetry"] = self.totals.get("telemetry", 0) + kept.stored
                self.totals["telemetry_duplicate"] = (
                    self.totals.get("telemetry_duplicate", 0) + kept.duplicate
                )
                poison += [(samples.carrier(i), reason) for i, reason in kept.rejected.items()]
            now = self.now() if self.now is not None else None  # None: ingest asks the clock
            for offset in range(0, len(plain.items), limit):
                result = ingest_plain(
                    session,
                    plain.items[offset : offset + limit],
                    source="mqtt",
                    now=now,
                    settings=self.settings,
                )
                poison += [(plain.carrier(offset + r.index), r.reason) for r in result.rejections]
                for key in ("accepted", "duplicate", "corrected"):
                    self.totals[key] += getattr(result, key)
            for offset in range(0, len(readings), limit):
                result = ingest_readings(
                    session,
                    readings[offset : offset + limit],
                    source="mqtt",
                    now=now,
                    settings=self.settings,
                )
                poison += [(carriers[offset + r.index], r.reason) for r in result.rejections]
                for key in ("accepted", "duplicate", "corrected"):
                    self.totals[key] += getattr(result, key)
            for carrier, reason in poison:
                log.warning("rejected message on %s: %s", carrier.message[2], reason)
                self.dead_letter(session, carrier, reason)
            session.commit()
        self.totals["rejected"] += len(poison)
        return result

    def process_singly(self, batch: list[Message]) -> IngestResult | None:
        """After a batch raised: each message alone, so only the one that raises is dead-lettered
        (with the exception as its reason) and the others are stored."""
        last = None
        for message in batch:
            try:
                last = self.process([message]) or last
            except Exception as exc:
                if is_outage(exc):
                    raise
                log.exception("message on %s could not be processed", message[2])
                reason = f"processing failed: {type(exc).__name__}: {exc}"
                try:
                    with Session(self.engine) as session:
                        self.dead_letter(session, message, reason)
                        session.commit()
                except Exception as failure:
                    if is_outage(failure):
                        raise
                    log.exception("could not dead-letter the message on %s; dropped", message[2])
                self.totals["rejected"] += 1
        return last

    def dead_letter(self, session: Session, carrier: Carrier | Message, reason: str) -> None:
        if not isinstance(carrier, Carrier):
            carrier = Carrier(carrier)
        dead_letters.record(
            session.connection(),
            source="mqtt",
            topic=carrier.message[2],
            payload=carrier.payload,
            reason=carrier.where + reason,
            max_bytes=self.settings.dead_letter_max_bytes,
        )

    def backoff_s(self) -> float:
        """Seconds to wait after the database failed `outages` times in a row (doubling)."""
        return float(min(self.flush_interval_s * 2**self.outages, self.settings.mqtt_retry_max_s))

    def start(self, retry_s: float = 0) -> None:
        """Connect; with `retry_s`, keep trying (a broker started later, or restarted).

        MQTT 5 with a persistent session (no clean start, session kept a day) and the largest
        receive maximum (65,535): the broker may have that many unacknowledged QoS 1 messages in
        flight to us, so the next batches arrive while one is committed, and a burst waits here
        rather than in the broker's queue, which holds only `max_queued_messages` per client
        (1,000 by default) and drops the rest (raise it where publishers can outrun us)."""
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 86_400
        properties.ReceiveMaximum = 65_535
        while True:
            try:
                self.client.connect(
                    self.settings.mqtt_host,
                    self.settings.mqtt_broker_port,
                    keepalive=30,
                    clean_start=False,
                    properties=properties,
                )
                break
            except OSError as exc:
                if not retry_s or self.stopped.is_set():
                    raise
                log.warning(
                    "MQTT broker %s:%s unreachable (%s); retrying",
                    self.settings.mqtt_host,
                    self.settings.mqtt_broker_port,
                    exc,
                )
                self.stopped.wait(retry_s)
        self.client.loop_start()

    def run(self, retry_s: float = 0) -> None:
        self.start(retry_s)
        heartbeat = Heartbeat(self.engine, MQTT, self.settings.heartbeat_interval_s)
        try:
            while not self.stopped.is_set():
                if self.client.is_connected():  # alive and subscribed: /health's mqtt check
                    heartbeat.beat()
                wait = self.due_in()
                if wait > 0:
                    self.stopped.wait(wait)
                    continue
                try:
                    self.flush()
                except StoreUnavailable as exc:
                    self.outages += 1
                    wait = self.backoff_s()
                    log.warning("database unavailable (%s); retrying in %.1f s", exc, wait)
                    self.stopped.wait(wait)
        finally:
            log.info("stopping: storing the next batch of %d pending", len(self.pending))
            with contextlib.suppress(StoreUnavailable):
                self.flush()
            log.info("stopping: %d messages left unacknowledged, for redelivery", len(self.pending))
            # the broker has taken our PUBACKs (round_trip) before the socket closes; DISCONNECT
            # wakes paho's network thread, which writes it, calls on_disconnect and ends.
            # loop_stop() at once would end that thread before it wrote what was queued, and
            # loop_stop() alone would wait out its `select` (up to a second)
            self.disconnected.clear()
            if self.client.is_connected() and not self.client.round_trip(DISCONNECT_WAIT_S):
                log.warning("stopping: the broker did not answer a ping; PUBACKs may be lost")
            if self.client.disconnect() == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS:
                self.disconnected.wait(DISCONNECT_WAIT_S)
            self.client.loop_stop()
            self.engine.dispose()
            log.info("stopped")


class Retiree(Subscriber):
    """The member of a shared subscription whose index is no longer run, brought up once to
    drain its session and end it (`python -m backend.meters.mqtt retire --index N`).

    Mosquitto 2.0 deals a shared subscription's messages round-robin to every member with a
    session, connected or not: after a change to fewer subscriber processes, the indexes no
    longer run keep their share of the stream queued in their sessions until those expire (a
    day), and past `max_queued_messages` the broker drops the rest. The retiree resumes the
    session (same client id, no clean start), unsubscribes at once (the broker deals it no more
    of the stream: the members still running take it), stores what the session held through the
    normal ingest and acknowledges it after the commit (redelivered readings, committed by the
    old process but not acknowledged, are idempotent duplicates: nothing lost, nothing doubled),
    and disconnects with a session expiry of 0, so the broker drops the session."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.client.on_unsubscribe = self.on_unsubscribe
        self.ready = threading.Event()  # unsubscribed (or no session to drain)
        self.session_present = False
        self.refused = ""  # the CONNACK's reason when the broker refused us
        self.received = 0  # messages received so far

    def connected(self, client: mqtt.Client, flags: mqtt.ConnectFlags, code: ReasonCode) -> None:
        """Unsubscribe instead of subscribing. Whatever the session queued is sent right after
        the CONNACK, before the UNSUBACK (a broker answers one client's packets in order)."""
        if code.is_failure:
            self.refused = str(code)
            self.ready.set()
            return
        self.session_present = flags.session_present
        if self.session_present:
            client.unsubscribe(self.topic)
        else:
            self.ready.set()

    def on_unsubscribe(self, *_: object) -> None:
        self.ready.set()

    def on_raw_message(self, mid: int, qos: int, topic: bytes, payload: bytes | bytearray) -> None:
        super().on_raw_message(mid, qos, topic, payload)
        with self.lock:
            self.received += 1

    def retire(self, timeout_s: float = 600) -> bool:
        """Drain the session into the store, then end it. Whether there was a session; a
        TimeoutError (the session left as it is: run again) when the broker did not answer or
        the database stayed down for `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        self.start()
        try:
            if not self.ready.wait(timeout_s):
                raise TimeoutError(f"{self.client_id}: no CONNACK/UNSUBACK in {timeout_s} s")
            if self.refused:
                raise ConnectionRefusedError(f"the broker refused {self.client_id}: {self.refused}")
            while True:
                while self.pending:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{self.client_id}: not drained in {timeout_s} s")
                    try:
                        self.flush()
                    except StoreUnavailable as exc:
                        self.outages += 1
                        log.warning("database unavailable (%s); retrying", exc)
                        time.sleep(self.backoff_s())
                with self.lock:
                    seen = self.received
                # the broker takes our PUBACKs and sends what they free before its PINGRESP
                if not self.client.round_trip(DISCONNECT_WAIT_S):
                    raise TimeoutError(f"{self.client_id}: the broker did not answer a ping")
                with self.lock:
                    if self.received == seen and not self.pending:
                        break
            properties = Properties(PacketTypes.DISCONNECT)
            properties.SessionExpiryInterval = 0  # the broker drops the session
            self.disconnected.clear()
            if self.client.disconnect(properties=properties) == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS:
                self.disconnected.wait(DISCONNECT_WAIT_S)
        finally:
            self.client.loop_stop()
            self.engine.dispose()
        return self.session_present


def retire_main(argv: list[str], settings: Settings) -> int:
    """`retire --index N [--index M ...] [--force]`: drain and end the sessions of members
    `{mqtt_client_id}-N` no longer run. An index below GRIDLEDGER_MQTT_SUBSCRIBERS is refused
    without --force: a process of that index may be running (connecting with its client id
    would take its session over)."""
    parser = argparse.ArgumentParser(
        prog="python -m backend.meters.mqtt retire",
        description="Drain the queued share of shared-subscription members no longer run into "
        "the store, then end their sessions.",
    )
    parser.add_argument("--index", type=int, action="append", required=True, metavar="N")
    parser.add_argument("--force", action="store_true", help="also an index still configured")
    parser.add_argument("--timeout", type=float, default=600, metavar="S")
    args = parser.parse_args(argv)
    running = [n for n in args.index if n < settings.mqtt_subscribers]
    if running and not args.force:
        parser.error(
            f"index {running[0]} is among the {settings.mqtt_subscribers} configured "
            "(GRIDLEDGER_MQTT_SUBSCRIBERS); stop its process and give --force"
        )
    for index in args.index:
        retiree = Retiree(settings=settings, client_id=f"{settings.mqtt_client_id}-{index}")
        try:
            had = retiree.retire(args.timeout)
        except (TimeoutError, OSError) as exc:
            log.error("%s not retired (its session stays; run again): %s", retiree.client_id, exc)
            return 1
        log.info(
            "%s retired: %s; %d messages drained (%s)",
            retiree.client_id,
            "session ended" if had else "it had no session",
            retiree.received,
            ", ".join(f"{k} {v}" for k, v in retiree.totals.items()),
        )
    return 0


DISCONNECT_WAIT_S = 2.0  # stopping: for the broker to take our last PUBACKs, and our DISCONNECT
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


def stop_on_signals(stopped: threading.Event, signals: frozenset[int] = STOP_SIGNALS) -> None:
    """Set `stopped` when one of `signals` arrives, from a thread of its own, never from a
    Python signal handler: a handler runs on the main thread between two bytecodes, possibly
    inside `stopped.wait()` while that holds the Event's lock, and `stopped.set()` there waits
    for that lock forever (the subscriber that ignored SIGTERM). The handlers do nothing; the
    interpreter's C handler writes each signal's number to a wake-up socket (whichever thread
    the signal hit, numpy's included), and the watcher thread reads it. Main thread only."""
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    for signum in signals:
        signal.signal(signum, lambda *_: None)

    def watch() -> None:
        with reader, writer:
            while not signals.intersection(reader.recv(64)):
                pass
        stopped.set()

    threading.Thread(target=watch, name="stop-on-signal", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    """`python -m backend.meters.mqtt [INDEX]`: INDEX tells apart the processes of one shared
    subscription group; it keeps the client id (and so the persistent session) across restarts.
    `python -m backend.meters.mqtt retire --index N`: drain and end member N's session
    (`retire_main`), once N is no longer run.
    SIGTERM or SIGINT: the pending batch is stored and acknowledged, the rest is left
    unacknowledged for the broker to redeliver, and the process exits. SIGUSR1 prints every
    thread's stack on stderr (faulthandler), for a process that seems stuck."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    settings = settings_or_exit("mqtt subscriber")
    if argv[:1] == ["retire"]:
        sys.exit(retire_main(argv[1:], settings))
    subscriber = Subscriber(
        settings=settings, client_id=f"{settings.mqtt_client_id}-{argv[0] if argv else 0}"
    )
    stop_on_signals(subscriber.stopped)
    log.info(
        "subscribing to %s on %s:%s%s",
        subscriber.topic,
        settings.mqtt_host,
        settings.mqtt_broker_port,
        " (TLS)" if settings.tls_enabled else "",
    )
    subscriber.run(retry_s=5)
    # stored, acknowledged, disconnected: leave without the interpreter's teardown of every
    # module, which takes seconds of a loaded machine and would only delay a restart
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()

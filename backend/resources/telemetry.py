"""Device telemetry: `output`, `soc` and `status` messages on the resource's MQTT topics
(`{root}/{gridArea}/{deviceType}/{resourceId}/{metric}`, see thing_description.py) into the
telemetry store (`der_telemetry`), and the latest state onto the resource.

Payloads are WIA-ENE-014's `{"timestamp", "value", "unit"}`: output in W or kW, SoC in Wh,
kWh or % of the resource's energy capacity, status a short text. Stored as integer W / Wh.
A message may also hold a JSON array of such samples (a gateway's batch); samples are stored
with one COPY per batch (`store_samples`), each resource's state moved once.
A sample older than the resource's latest state is stored but does not move the state back.
A sample already stored (same resource, metric and time: a QoS 1 message redelivered after
its commit but before its acknowledgement) is skipped and counted as a duplicate.
Messages on topics whose device id is not a resource id (meters' topics) are not ours: None.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple, cast

import orjson
from sqlmodel import Session, col, select

from backend.core.config import Settings
from backend.market.order_events import queue_message
from backend.resources.errors import TelemetryRejected
from backend.resources.models import DerResource, ResourceStatus, TelemetryMetric, TelemetrySample
from indexer.bulk import insert_new

POWER_UNITS = {"W": 1, "kW": 1_000}
ENERGY_UNITS = {"Wh": 1, "kWh": 1_000}
METRICS = frozenset(m.value for m in TelemetryMetric)
TELEMETRY_TOPIC = "der.telemetry"  # outbox: {"resources": [ids that reported], "at": unix s}
TABLE = TelemetrySample.__table__  # type: ignore[attr-defined]
KEY = ["resource_id", "metric", "at"]  # unique: a redelivered sample is stored once


@dataclass(frozen=True)
class Sample:
    resource_id: uuid.UUID
    metric: TelemetryMetric
    at: int  # unix s
    value: float | None
    unit: str
    status: str | None = None


def parse_time(body: dict[str, object], now: datetime) -> int:
    stamp = body.get("timestamp")
    if stamp is None:
        return int(now.timestamp())
    if not isinstance(stamp, str):
        raise TelemetryRejected("timestamp must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError as exc:
        raise TelemetryRejected(f"invalid timestamp {stamp!r}") from exc
    if parsed.tzinfo is None:
        raise TelemetryRejected("timestamp needs a time zone (UTC)")
    return int(parsed.timestamp())


def sample_from_message(
    topic: str, payload: bytes | bytearray, root: str, now: datetime | None = None
) -> Sample | None:
    """The sample a single-sample message carries; None when the topic is not a resource's
    telemetry."""
    found = samples_from_message(topic, payload, root, now)
    if isinstance(found, list):
        raise TelemetryRejected("payload must be a JSON object")
    return found


def samples_from_message(
    topic: str,
    payload: bytes | bytearray,
    root: str,
    now: datetime | None = None,
    max_elements: int = 100_000,
) -> Sample | list[Sample | TelemetryRejected] | None:
    """The sample (a JSON object) or samples (a JSON array of them, a gateway's batch; an
    element that is not a valid sample is its TelemetryRejected) a message carries; None when
    the topic is not a resource's telemetry. TelemetryRejected when the whole message is bad."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != root or parts[4] not in METRICS:
        return None
    try:
        resource_id = uuid.UUID(parts[3])
    except ValueError:
        return None
    metric = TelemetryMetric(parts[4])
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise TelemetryRejected(f"invalid JSON: {exc}") from None
    now = now or datetime.now(UTC)
    if not isinstance(body, list):
        return sample_from_body(resource_id, metric, body, now)
    if not body or len(body) > max_elements:
        raise TelemetryRejected(f"a batched message holds 1 to {max_elements} samples")
    samples: list[Sample | TelemetryRejected] = []
    for element in body:
        try:
            samples.append(sample_from_body(resource_id, metric, element, now))
        except TelemetryRejected as exc:
            samples.append(exc)
    return samples


def sample_from_body(
    resource_id: uuid.UUID, metric: TelemetryMetric, body: object, now: datetime
) -> Sample:
    if not isinstance(body, dict):
        raise TelemetryRejected("payload must be a JSON object")
    at = parse_time(body, now)
    value = body.get("value")
    if metric == TelemetryMetric.STATUS:
        status = body.get("status", value)
        if not isinstance(status, str) or not 0 < len(status) <= 64:
            raise TelemetryRejected("status must be a text of 1 to 64 characters")
        return Sample(resource_id, metric, at, None, "", status)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TelemetryRejected(f"{metric} needs a numeric value")
    units = POWER_UNITS if metric == TelemetryMetric.OUTPUT else {**ENERGY_UNITS, "%": 0}
    unit = body.get("unit", "W" if metric == TelemetryMetric.OUTPUT else "Wh")
    if unit not in units:
        raise TelemetryRejected(f"unit {unit!r} is not one of {sorted(units)} for {metric}")
    return Sample(resource_id, metric, at, float(value), str(unit))


def integer_value(sample: Sample, resource: DerResource) -> int:
    """The sample in W (output) or Wh (soc); TelemetryRejected when it cannot be."""
    if sample.value is None:
        raise TelemetryRejected(f"{sample.metric} needs a value")
    if sample.metric == TelemetryMetric.OUTPUT:
        return round(sample.value * POWER_UNITS[sample.unit])
    capacity = resource.energy_capacity_wh
    if not resource.is_storage or not capacity:
        raise TelemetryRejected(f"resource {resource.id} has no state of charge")
    wh = (
        round(sample.value / 100 * capacity)
        if sample.unit == "%"
        else round(sample.value * ENERGY_UNITS[sample.unit])
    )
    if not 0 <= wh <= capacity:
        raise TelemetryRejected(f"SoC {wh} Wh outside 0..{capacity} Wh")
    return wh


def record_samples(
    session: Session, samples: list[Sample], *, settings: Settings | None = None
) -> tuple[int, list[str]]:
    """Store the samples of active resources and advance their latest state; returns how many
    were stored (a sample already stored, a redelivery, is not stored again) and why the
    others were rejected (in the samples' order). With `settings`, one `der.telemetry` outbox
    message names the resources that reported (the WebSocket's live channels,
    backend/vpp/live.py). The caller commits."""
    result = store_samples(session, samples, settings=settings)
    return result.stored, [reason for _, reason in sorted(result.rejected.items())]


class StoredSamples(NamedTuple):
    stored: int  # new rows
    duplicate: int  # samples already stored (same resource, metric and time): skipped
    rejected: dict[int, str]  # by position in the samples: why not stored


def store_samples(
    session: Session, samples: list[Sample], *, settings: Settings | None = None
) -> StoredSamples:
    """`record_samples` in bulk: the samples go in with one COPY (PostgreSQL; a staging table
    and `ON CONFLICT DO NOTHING` when some are stored already) instead of an ORM row each, and
    each resource's latest state moves once, by the samples that were new."""
    ids = {s.resource_id for s in samples}
    resources = {
        r.id: r for r in session.exec(select(DerResource).where(col(DerResource.id).in_(ids)))
    }
    rows: list[dict[str, object]] = []
    valid: list[Sample] = []  # the sample of each row, in time order
    rejected: dict[int, str] = {}
    received_at = datetime.now(UTC)
    for index in sorted(range(len(samples)), key=lambda i: samples[i].at):
        sample = samples[index]
        resource = resources.get(sample.resource_id)
        if resource is None or resource.status == ResourceStatus.DECOMMISSIONED:
            rejected[index] = f"no active resource {sample.resource_id}"
            continue
        try:
            value = None if sample.value is None else integer_value(sample, resource)
        except TelemetryRejected as exc:
            rejected[index] = exc.detail
            continue
        rows.append(
            {
                "resource_id": resource.id,
                "metric": sample.metric.value,
                "at": sample.at,
                "value": value,
                "status": sample.status,
                "received_at": received_at,
            }
        )
        valid.append(sample)
    inserted = insert_new(session.connection(), TABLE, rows, KEY)
    moved: set[uuid.UUID] = set()
    reported: set[uuid.UUID] = set()
    latest = 0
    for row, sample, new in zip(rows, valid, inserted, strict=True):
        if not new:
            continue
        resource = resources[sample.resource_id]
        reported.add(resource.id)
        latest = max(latest, sample.at)
        at = datetime.fromtimestamp(sample.at, UTC)
        if resource.state_at is None or at >= resource.state_at:
            resource.state_at = at  # in time order: the latest sample of each metric wins
            if sample.metric == TelemetryMetric.OUTPUT:
                resource.output_w = cast(int | None, row["value"])
            elif sample.metric == TelemetryMetric.SOC:
                resource.soc_wh = cast(int | None, row["value"])
            moved.add(resource.id)
    for resource_id in moved:
        session.add(resources[resource_id])
    if settings is not None and reported:
        payload = {"resources": sorted(str(r) for r in reported), "at": latest}
        queue_message(session, settings, TELEMETRY_TOPIC, payload)
    session.flush()
    stored = sum(inserted)
    return StoredSamples(stored, len(rows) - stored, rejected)

"""Device telemetry: `output`, `soc` and `status` messages on the resource's MQTT topics
(`{root}/{gridArea}/{deviceType}/{resourceId}/{metric}`, see thing_description.py) into the
telemetry store (`der_telemetry`), and the latest state onto the resource.

Payloads are WIA-ENE-014's `{"timestamp", "value", "unit"}`: output in W or kW, SoC in Wh,
kWh or % of the resource's energy capacity, status a short text. Stored as integer W / Wh.
A message may also hold a JSON array of such samples (a gateway's batch); samples are stored
with one COPY per batch (`store_samples`, telemetry_copy.py), their values converted per
resource, metric and unit in numpy, each resource's state moved once. Payloads are decoded
typed with msgspec; one that does not decode so takes the general way, with the same outcome.
A sample older than the resource's latest state is stored but does not move the state back.
A sample already stored (same resource, metric and time: a QoS 1 message redelivered after
its commit but before its acknowledgement) is skipped and counted as a duplicate.
Messages on topics whose device id is not a resource id (meters' topics) are not ours: None.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import NamedTuple

import msgspec
import numpy as np
import orjson
from sqlmodel import Session, col, select

from backend.core.config import Settings
from backend.market.order_events import queue_message
from backend.resources.errors import TelemetryRejected
from backend.resources.models import DerResource, ResourceStatus, TelemetryMetric
from backend.resources.telemetry_copy import copy_samples

POWER_UNITS = {"W": 1, "kW": 1_000}
ENERGY_UNITS = {"Wh": 1, "kWh": 1_000}
ENERGY_UNITS_AND_PERCENT = {**ENERGY_UNITS, "%": 0}
METRICS = frozenset(m.value for m in TelemetryMetric)
TELEMETRY_TOPIC = "der.telemetry"  # outbox: {"resources": [ids that reported], "at": unix s}


class Sample(NamedTuple):
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


class _Plain(msgspec.Struct):
    """A numeric sample as most devices send it (output or soc); any other shape, and any
    value these types refuse, goes through `sample_from_body` for its reason."""

    value: float
    timestamp: str | None = None
    unit: str | msgspec.UnsetType = msgspec.UNSET  # null or "" is not a unit (refused)


_DECODE_ONE = msgspec.json.Decoder(_Plain)
_DECODE_MANY = msgspec.json.Decoder(list[_Plain])
_TIMES: dict[str, int] = {}  # parsed timestamps: a gateway's devices report the same instants
_TIMES_KEPT = 100_000


def _time(stamp: str | None, now: datetime) -> int:
    if stamp is None:
        return int(now.timestamp())
    at = _TIMES.get(stamp)
    if at is None:
        at = parse_time({"timestamp": stamp}, now)
        if len(_TIMES) >= _TIMES_KEPT:
            _TIMES.clear()
        _TIMES[stamp] = at
    return at


def _plain_samples(
    resource_id: uuid.UUID, metric: TelemetryMetric, payload: bytes | bytearray, now: datetime
) -> Sample | list[Sample] | None:
    """The samples of a payload whose every sample is plain, None for any other payload."""
    if metric == TelemetryMetric.STATUS:
        return None
    units = POWER_UNITS if metric == TelemetryMetric.OUTPUT else ENERGY_UNITS_AND_PERCENT
    default = "W" if metric == TelemetryMetric.OUTPUT else "Wh"
    try:
        first = payload.lstrip()[:1]
        found = _DECODE_MANY.decode(payload) if first == b"[" else [_DECODE_ONE.decode(payload)]
        samples = [
            Sample(
                resource_id,
                metric,
                _time(p.timestamp, now),
                p.value,
                default if p.unit is msgspec.UNSET else p.unit,
            )
            for p in found
        ]
    except (msgspec.ValidationError, msgspec.DecodeError, TelemetryRejected):
        return None
    if not samples or any(s.unit not in units for s in samples):
        return None
    return samples if first == b"[" else samples[0]


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
    the topic is not a resource's telemetry. TelemetryRejected when the whole message is bad.
    A sample without a timestamp is stamped `now`: the subscriber passes the configured clock's
    (chain time in a simulation); wall time only when no `now` is given."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != root or parts[4] not in METRICS:
        return None
    try:
        resource_id = uuid.UUID(parts[3])
    except ValueError:
        return None
    metric = TelemetryMetric(parts[4])
    now = now or datetime.now(UTC)
    plain = _plain_samples(resource_id, metric, payload, now)
    if isinstance(plain, Sample):
        return plain
    if plain is not None and len(plain) <= max_elements:
        many: list[Sample | TelemetryRejected] = list(plain)
        return many
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise TelemetryRejected(f"invalid JSON: {exc}") from None
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
    units = POWER_UNITS if metric == TelemetryMetric.OUTPUT else ENERGY_UNITS_AND_PERCENT
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
    values, rejected = _integer_values(samples, resources)
    kept = [i for i in range(len(samples)) if i not in rejected]
    kept.sort(key=lambda i: samples[i].at)  # time order: of rows sharing a key the first wins
    inserted = copy_samples(
        session.connection(),
        [samples[i] for i in kept],
        [values[i] for i in kept],
        datetime.now(UTC),
    )
    new = [i for i, went_in in zip(kept, inserted, strict=True) if went_in]
    _move_state(session, samples, values, new, resources, settings)
    session.flush()
    return StoredSamples(len(new), len(kept) - len(new), rejected)


def _integer_values(
    samples: list[Sample], resources: dict[uuid.UUID, DerResource]
) -> tuple[list[int | None], dict[int, str]]:
    """Each sample's value in W or Wh (None: a status), converted per resource, metric and
    unit in numpy; the reasons of the samples that cannot be stored, by position. A value the
    vectorised conversion does not settle (absent, beyond 2^53, a SoC out of range) is left to
    `integer_value`, which gives the reason."""
    groups: dict[tuple[uuid.UUID, TelemetryMetric, str], list[int]] = defaultdict(list)
    for index, sample in enumerate(samples):
        groups[sample.resource_id, sample.metric, sample.unit].append(index)
    values: list[int | None] = [None] * len(samples)
    rejected: dict[int, str] = {}
    for (resource_id, metric, unit), where in groups.items():
        resource = resources.get(resource_id)
        if resource is None or resource.status == ResourceStatus.DECOMMISSIONED:
            rejected.update(dict.fromkeys(where, f"no active resource {resource_id}"))
            continue
        if metric == TelemetryMetric.STATUS:
            continue
        exact = _converted(samples, where, metric, unit, resource)
        for index, value in zip(where, exact.tolist(), strict=True):
            if value is not None or samples[index].value is None:  # no value: stored as such
                values[index] = value
                continue
            try:
                values[index] = integer_value(samples[index], resource)
            except TelemetryRejected as exc:
                rejected[index] = exc.detail
    return values, rejected


def _converted(
    samples: list[Sample],
    where: list[int],
    metric: TelemetryMetric,
    unit: str,
    resource: DerResource,
) -> np.ndarray:
    """`integer_value` of the samples at `where` (one resource, metric and unit) as an object
    array, None where it is not certain to agree (left to `integer_value`)."""
    raw = [samples[i].value for i in where]
    out = np.full(len(where), None, dtype=object)
    if None in raw or (metric == TelemetryMetric.SOC and not resource.is_storage):
        return out
    value = np.array(raw, dtype=np.float64)
    capacity = resource.energy_capacity_wh or 0
    if metric == TelemetryMetric.OUTPUT:
        converted = np.rint(value * POWER_UNITS[unit])  # round(): halves to even, as numpy
        fine = np.abs(converted) <= 2**53
    else:
        converted = np.rint(value / 100 * capacity if unit == "%" else value * ENERGY_UNITS[unit])
        fine = (converted >= 0) & (converted <= capacity) & (capacity > 0)
    at = np.flatnonzero(fine)
    out[at] = converted[at].astype(np.int64).tolist()
    return out


def _move_state(
    session: Session,
    samples: list[Sample],
    values: list[int | None],
    new: list[int],
    resources: dict[uuid.UUID, DerResource],
    settings: Settings | None,
) -> None:
    """Each resource's latest state from its new samples (`new`, in time order), once: a sample
    older than the state does not move it back; the latest output and SoC win."""
    latest: dict[uuid.UUID, dict[TelemetryMetric, int]] = defaultdict(dict)  # metric -> index
    for index in new:  # time order: a later sample replaces an earlier one
        latest[samples[index].resource_id][samples[index].metric] = index
    for resource_id, by_metric in latest.items():
        resource = resources[resource_id]
        since = resource.state_at
        moved = False
        for metric, index in by_metric.items():
            at = datetime.fromtimestamp(samples[index].at, UTC)
            if since is not None and at < since:
                continue
            moved = True
            if resource.state_at is None or at > resource.state_at:
                resource.state_at = at
            if metric == TelemetryMetric.OUTPUT:
                resource.output_w = values[index]
            elif metric == TelemetryMetric.SOC:
                resource.soc_wh = values[index]
        if moved:
            session.add(resource)
    if settings is not None and latest:
        reported = sorted(str(r) for r in latest)
        payload = {"resources": reported, "at": max(samples[i].at for i in new)}
        queue_message(session, settings, TELEMETRY_TOPIC, payload)

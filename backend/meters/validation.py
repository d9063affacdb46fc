"""Validation of raw readings (dicts parsed from JSON): one readable reason per rejection.

Hand-written rather than a Pydantic model per reading: the bulk path validates 10,000+
readings per request and each rejection must say exactly what is wrong.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from backend.meters.models import INTERVAL_SECONDS, MeterKind

METER_ID_RE = re.compile(r"^0x[0-9a-f]{64}$")
MAX_WH = 10**12  # no meter measures a terawatt-hour in 15 minutes
UNIT_FACTORS = {"Wh": 1, "kWh": 1000}
QUALITIES = {"high", "medium", "low", "estimated"}
KNOWN_FIELDS = {
    "meterId",
    "timestamp",
    "intervalSeconds",
    "importWh",
    "exportWh",
    "unit",
    "voltage",
    "current",
    "powerFactor",
    "quality",
    "metadata",
    "version",
    "standard",
    "signature",
}


@dataclass(frozen=True)
class MeterLimits:
    """What a reading of one meter is checked against. `capacity_w` caps export: the approved
    capacity once the registrar approved one, else the owner's declared capacity."""

    meter_id: str
    kind: str
    capacity_w: int
    owner_id: uuid.UUID | None = None
    status: str = "pending"  # a MeterStatus
    signing_key: str | None = None
    capacity_approved: bool = False


def shown(value: object, limit: int = 40) -> str:
    """`value` for a rejection reason: its repr, cut short (a device may send a megabyte)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**limit:
        return f"a {value.bit_length()}-bit integer"  # repr() refuses over 4,300 digits
    text = repr(value) if isinstance(value, (str, int, float, bool)) else type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ReadingRejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def normalise_meter_id(value: object) -> str:
    """A reading's meter as looked up: lower-case bytes32 hex id, or a meter name as given.

    A name is resolved through the meters table (`meter_limits`), never hashed: meter ids are
    owner-bound (backend.market.orders.meter_id), so the name alone does not give the id.
    """
    if not isinstance(value, str) or not value or len(value) > 120:
        raise ReadingRejected("meterId must be a non-empty string (bytes32 hex or meter name)")
    if not value.isprintable():  # a NUL would even break the database lookup
        raise ReadingRejected("meterId must not contain control characters")
    outcome = _meter_id(value)
    if outcome.startswith("!"):
        raise ReadingRejected(outcome[1:])
    return outcome


@lru_cache(maxsize=65_536)
def _meter_id(value: str) -> str:
    """The id or name, or "!reason" (cached: a batch repeats the same few meters many times)."""
    lowered = value.lower()
    if METER_ID_RE.match(lowered):
        return lowered
    if lowered.startswith("0x"):
        return "!meterId hex must be 32 bytes (0x + 64 hex digits)"
    return value


def parse_timestamp(value: object) -> int:
    if not isinstance(value, str):
        raise ReadingRejected("timestamp must be an ISO 8601 string in UTC")
    outcome = _timestamp(value[:64])
    if isinstance(outcome, str):
        raise ReadingRejected(outcome)
    return outcome


@lru_cache(maxsize=65_536)
def _timestamp(value: str) -> int | str:
    """Unix seconds, or the reason (cached: a batch shares a few interval starts)."""
    try:
        moment = datetime.fromisoformat(
            value.replace("Z", "+00:00") if value.endswith("Z") else value
        )
    except ValueError:
        return f"timestamp {value[:40]!r} is not ISO 8601"
    offset = moment.utcoffset()  # None for a naive timestamp
    if offset is None or offset.total_seconds() != 0:
        return "timestamp must be UTC (suffix Z or +00:00)"
    if moment.microsecond:
        return "timestamp must be aligned to 15 minutes (has sub-second part)"
    return int(moment.timestamp())


def energy_wh(reading: dict[str, Any], field: str, factor: int) -> int | None:
    value = reading.get(field)
    if value is None:
        return None
    if not _is_number(value):
        raise ReadingRejected(f"{field} must be a number, got {type(value).__name__}")
    if not _is_finite(value):
        raise ReadingRejected(f"{field} must be finite, got {value}")
    if value < 0:
        raise ReadingRejected(f"{field} must not be negative, got {shown(value)}")
    if value > MAX_WH:  # before multiplying: a 4,000-digit integer stays cheap to reject
        raise ReadingRejected(f"{field} {shown(value)} is implausibly large")
    wh = value * factor
    if wh > MAX_WH:
        raise ReadingRejected(f"{field} {shown(value)} is implausibly large")
    return round(wh)


def _is_number(value: object) -> bool:
    """A JSON number (bool is an int subclass in Python, not a number in JSON)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_finite(value: float) -> bool:
    """Not NaN or infinite; any int is finite (math.isfinite overflows on a huge one)."""
    return isinstance(value, int) or math.isfinite(value)


def optional_number(
    reading: dict[str, Any], field: str, low: float | None = None, high: float | None = None
) -> float | None:
    value = reading.get(field)
    if value is None:
        return None
    if not _is_number(value) or not _is_finite(value):
        raise ReadingRejected(f"{field} must be a finite number")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ReadingRejected(f"{field} {shown(value)} outside [{low}, {high}]")
    return float(value)


def validate_reading(
    reading: object,
    meters: dict[str, MeterLimits],
    *,
    now: int,
    skew_s: int,
    max_import_wh: int,
    sender_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """The storable row for `reading`, or ReadingRejected with the reason."""
    if not isinstance(reading, dict):
        raise ReadingRejected(f"a reading must be a JSON object, got {type(reading).__name__}")
    for required in ("meterId", "timestamp"):
        if required not in reading:
            raise ReadingRejected(f"missing required field {required}")
    key = normalise_meter_id(reading["meterId"])
    start = parse_timestamp(reading["timestamp"])
    interval = reading.get("intervalSeconds", INTERVAL_SECONDS)
    if not _is_number(interval) or interval != INTERVAL_SECONDS:
        raise ReadingRejected(f"intervalSeconds must be {INTERVAL_SECONDS}, got {shown(interval)}")
    if start % INTERVAL_SECONDS:
        raise ReadingRejected(
            f"timestamp {reading['timestamp']} is not aligned to a 15-minute boundary"
        )
    if start + INTERVAL_SECONDS > now + skew_s:
        raise ReadingRejected(
            f"interval starting {reading['timestamp']} has not ended yet (future reading)"
        )
    unit = reading.get("unit", "Wh")
    if not isinstance(unit, str) or unit not in UNIT_FACTORS:  # a list is unhashable
        raise ReadingRejected(f"unit must be Wh or kWh, got {shown(unit)}")
    factor = UNIT_FACTORS[unit]
    import_wh = energy_wh(reading, "importWh", factor)
    export_wh = energy_wh(reading, "exportWh", factor)
    if import_wh is None and export_wh is None:
        raise ReadingRejected("a reading needs importWh, exportWh or both")
    limits = meters.get(key)
    if limits is None:
        raise ReadingRejected(f"unknown meter {key}")
    meter = limits.meter_id
    if sender_id is not None and limits.owner_id != sender_id:
        raise ReadingRejected(f"meter {meter} belongs to another account")
    if export_wh and limits.kind == MeterKind.IMPORT:
        raise ReadingRejected("an import-only meter cannot report export")
    if import_wh and limits.kind == MeterKind.EXPORT:
        raise ReadingRejected("an export-only meter cannot report import")
    export_limit = limits.capacity_w * INTERVAL_SECONDS // 3600
    if export_wh is not None and export_wh > export_limit:
        raise ReadingRejected(
            f"exportWh {export_wh} exceeds the meter's "
            f"{'approved' if limits.capacity_approved else 'declared'} capacity "
            f"{limits.capacity_w} W x 15 min = {export_limit} Wh"
        )
    if import_wh is not None and import_wh > max_import_wh:
        raise ReadingRejected(
            f"importWh {import_wh} exceeds the plausible maximum {max_import_wh} Wh per interval"
        )
    quality = reading.get("quality")
    if quality is not None and (not isinstance(quality, str) or quality not in QUALITIES):
        raise ReadingRejected(f"quality must be one of {sorted(QUALITIES)}, got {shown(quality)}")
    return {
        "meter_id": meter,
        "interval_start": start,
        "import_wh": import_wh,
        "export_wh": export_wh,
        "voltage_v": optional_number(reading, "voltage", 0, 1_000_000),
        "current_a": optional_number(reading, "current", -1_000_000, 1_000_000),
        "power_factor": optional_number(reading, "powerFactor", -1, 1),
        "quality": quality,
    }


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

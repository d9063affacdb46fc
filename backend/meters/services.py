"""Meter registry, reading ingestion (one core for REST and MQTT) and energy series.

Ingestion: validate every reading (backend/meters/validation.py), then store the valid ones
in one set-based pass: bulk load into a temporary staging table (PostgreSQL COPY, SQLite
executemany, via indexer/bulk.py), then
  1. INSERT ... SELECT ... ON CONFLICT DO NOTHING      -> new intervals (accepted)
  2. INSERT INTO reading_corrections ... JOIN          -> stored value differs (corrected)
  3. UPDATE meter_readings ... FROM staging            -> apply corrections, fill a missing
                                                          direction (accepted)
Everything else is an exact duplicate. A batch holding the same interval twice is stored in
rounds (first occurrences, then second ones, ...) so in-batch repeats follow the same rules.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import BigInteger, Column, Float, MetaData, String, Table, or_, text
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from backend.accounts.models import Account
from backend.chain import clock
from backend.core.config import Settings, get_settings
from backend.market.orders import meter_id as owner_bound_meter_id
from backend.meters.broker_auth import mosquitto_hash
from backend.meters.broker_auth import verify as verify_mqtt
from backend.meters.errors import (
    MeterAccessDenied,
    MeterAlreadyRegistered,
    MeterNameInvalid,
    MeterNotFound,
    ReadingBatchTooLarge,
    ReadingsMalformed,
)
from backend.meters.models import INTERVAL_SECONDS, Meter, MeterReading
from backend.meters.schemas import (
    Aggregation,
    Direction,
    EnergyPoint,
    EnergySeries,
    IngestResult,
    MeterCreate,
    Rejection,
)
from backend.meters.validation import (
    MeterLimits,
    ReadingRejected,
    normalise_meter_id,
    validate_reading,
)
from indexer.bulk import bulk_insert

STAGING = Table(
    "_staging_meter_readings",
    MetaData(),
    Column("meter_id", String(66)),
    Column("interval_start", BigInteger),
    Column("import_wh", BigInteger),
    Column("export_wh", BigInteger),
    Column("voltage_v", Float),
    Column("current_a", Float),
    Column("power_factor", Float),
    Column("quality", String(16)),
)
STAGING_DDL = {
    "postgresql": "CREATE TEMP TABLE IF NOT EXISTS _staging_meter_readings (meter_id varchar(66), "
    "interval_start bigint, import_wh bigint, export_wh bigint, voltage_v double precision, "
    "current_a double precision, power_factor double precision, quality varchar(16)) "
    "ON COMMIT DELETE ROWS",
    "sqlite": "CREATE TEMP TABLE IF NOT EXISTS _staging_meter_readings (meter_id TEXT, "
    "interval_start INTEGER, import_wh INTEGER, export_wh INTEGER, voltage_v REAL, "
    "current_a REAL, power_factor REAL, quality TEXT)",
}
DIFFERS = "(s.import_wh <> r.import_wh OR s.export_wh <> r.export_wh)"
INSERT_NEW = text(
    "INSERT INTO meter_readings (meter_id, interval_start, interval_s, import_wh, export_wh, "
    "voltage_v, current_a, power_factor, quality, revision, source, received_at) "
    f"SELECT meter_id, interval_start, {INTERVAL_SECONDS}, import_wh, export_wh, voltage_v, "
    "current_a, power_factor, quality, 0, :source, :received_at "
    "FROM _staging_meter_readings WHERE true ON CONFLICT (meter_id, interval_start) DO NOTHING"
)
INSERT_CORRECTIONS = text(
    "INSERT INTO reading_corrections (meter_id, interval_start, revision, previous_import_wh, "
    "previous_export_wh, import_wh, export_wh, source, received_at) "
    "SELECT r.meter_id, r.interval_start, r.revision + 1, r.import_wh, r.export_wh, "
    "COALESCE(s.import_wh, r.import_wh), COALESCE(s.export_wh, r.export_wh), :source, :received_at "
    "FROM _staging_meter_readings s JOIN meter_readings r "
    "ON r.meter_id = s.meter_id AND r.interval_start = s.interval_start "
    f"WHERE {DIFFERS}"
)
APPLY_UPDATES = text(
    "UPDATE meter_readings AS r SET import_wh = COALESCE(s.import_wh, r.import_wh), "
    "export_wh = COALESCE(s.export_wh, r.export_wh), "
    f"revision = r.revision + CASE WHEN {DIFFERS} THEN 1 ELSE 0 END, "
    "source = :source, received_at = :received_at "
    "FROM _staging_meter_readings s "
    "WHERE r.meter_id = s.meter_id AND r.interval_start = s.interval_start AND ("
    f"{DIFFERS} OR (s.import_wh IS NOT NULL AND r.import_wh IS NULL) "
    "OR (s.export_wh IS NOT NULL AND r.export_wh IS NULL))"
)


# ------------------------------------------------------------------------ meter registry


def register_meter(session: Session, owner: Account, data: MeterCreate) -> Meter:
    if data.name.lower().startswith("0x"):
        raise MeterNameInvalid("a meter name must not start with 0x (it would read as a hex id)")
    meter_id = "0x" + owner_bound_meter_id(owner.address, data.name).hex()
    taken = session.exec(select(Meter.meter_id).where(Meter.name == data.name)).first()
    if taken is not None or session.get(Meter, meter_id) is not None:
        raise MeterAlreadyRegistered(
            f"meter {data.name!r} is already registered", meter_id=meter_id
        )
    meter = Meter(
        meter_id=meter_id,
        name=data.name,
        owner_id=owner.id,
        kind=data.kind.value,
        capacity_w=data.capacity_w,
        device_id=data.device_id,
        mqtt_password_hash=mosquitto_hash(data.mqtt_password) if data.mqtt_password else None,
    )
    session.add(meter)
    session.commit()
    session.refresh(meter)
    return meter


def check_mqtt_credentials(session: Session, device: str, password: str) -> str | None:
    """The meter id whose MQTT password is `password`, for device `device` (name or id)."""
    try:
        meter = find_meter(session, device)
    except ReadingRejected:
        return None
    if (
        meter is None
        or not meter.mqtt_password_hash
        or not verify_mqtt(password, meter.mqtt_password_hash)
    ):
        return None
    return meter.meter_id


def find_meter(session: Session, meter: str) -> Meter | None:
    """The meter named by `meter`: its bytes32 hex id or its name (ReadingRejected if malformed)."""
    key = normalise_meter_id(meter)
    column = Meter.meter_id if key.startswith("0x") else Meter.name
    return session.exec(select(Meter).where(column == key)).first()


def meter_limits(connection: Connection, keys: set[str]) -> dict[str, MeterLimits]:
    """Limits of the meters named by `keys` (normalised ids or names), keyed by those keys."""
    if not keys:
        return {}
    ids = sorted(k for k in keys if k.startswith("0x"))
    names = sorted(k for k in keys if not k.startswith("0x"))
    rows = connection.execute(
        sa_select(
            col(Meter.meter_id),
            col(Meter.name),
            col(Meter.kind),
            col(Meter.capacity_w),
            col(Meter.owner_id),
        ).where(or_(col(Meter.meter_id).in_(ids), col(Meter.name).in_(names)))
    )
    limits: dict[str, MeterLimits] = {}
    for meter_id, name, kind, capacity, owner in rows:
        found = MeterLimits(meter_id, kind, capacity, owner)
        for key in (meter_id, name):
            if key in keys:
                limits[key] = found
    return limits


# ----------------------------------------------------------------------------- ingestion


def parse_bulk_body(body: bytes, content_type: str) -> tuple[list[Any], list[Rejection]]:
    """Readings from a JSON array or NDJSON body; an unparsable NDJSON line is one rejection."""
    stripped = body.lstrip()
    if "ndjson" not in content_type and "jsonl" not in content_type and stripped[:1] == b"[":
        try:
            array = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ReadingsMalformed(f"invalid JSON array: {exc}") from None
        return array, []
    if stripped[:1] not in (b"{", b""):
        raise ReadingsMalformed("expected a JSON array or NDJSON (one reading object per line)")
    items: list[Any] = []
    rejections: list[Rejection] = []
    for line in body.split(b"\n"):
        if not line.strip():
            continue
        try:
            items.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            rejections.append(
                Rejection(index=len(items) + len(rejections), reason=f"invalid JSON: {exc}")
            )
            items.append(_UNPARSABLE)
    return items, rejections


_UNPARSABLE = object()


def ingest_readings(
    session: Session,
    readings: list[Any],
    *,
    source: str,
    now: int | None = None,
    settings: Settings | None = None,
    prior_rejections: list[Rejection] | None = None,
    sender_id: uuid.UUID | None = None,
) -> IngestResult:
    """Validate and store `readings`; counts per outcome and the reason of every rejection.

    With `sender_id`, only readings of meters that account owns are accepted. `settings`
    defaults to the process settings (`get_settings()`).
    """
    settings = settings or get_settings()
    if len(readings) > settings.meter_max_batch:
        raise ReadingBatchTooLarge(
            f"{len(readings)} readings; at most {settings.meter_max_batch} per request"
        )
    now = clock.now(settings) if now is None else now
    connection = session.connection()
    candidates: set[str] = set()
    for reading in readings:
        if isinstance(reading, dict):
            with contextlib.suppress(ReadingRejected):
                candidates.add(normalise_meter_id(reading.get("meterId")))
    meters = meter_limits(connection, candidates)
    rejections = list(prior_rejections or [])
    already = {r.index for r in rejections}
    rows: list[dict[str, Any]] = []
    for index, reading in enumerate(readings):
        if reading is _UNPARSABLE or index in already:
            continue
        try:
            rows.append(
                validate_reading(
                    reading,
                    meters,
                    now=now,
                    skew_s=settings.meter_clock_skew_s,
                    max_import_wh=settings.meter_max_import_wh,
                    sender_id=sender_id,
                )
            )
        except ReadingRejected as exc:
            rejections.append(
                Rejection(
                    index=index,
                    reason=exc.reason,
                    meterId=echo(reading, "meterId", 120),
                    timestamp=echo(reading, "timestamp", 40),
                )
            )
    accepted, duplicate, corrected = store_readings(connection, rows, source)
    session.commit()
    rejections.sort(key=lambda r: r.index)
    return IngestResult(
        received=len(readings),
        accepted=accepted,
        duplicate=duplicate,
        corrected=corrected,
        rejected=len(rejections),
        rejections=rejections,
    )


def echo(reading: object, key: str, limit: int) -> str | None:
    """A field of a rejected reading, shortened, to tell the sender which one it was."""
    if not isinstance(reading, dict) or reading.get(key) is None:
        return None
    return str(reading[key])[:limit]


def store_readings(
    connection: Connection,
    rows: list[dict[str, Any]],
    source: str,
    received_at: datetime | None = None,
) -> tuple[int, int, int]:
    """Store validated rows; returns (accepted, duplicate, corrected). Caller commits."""
    if not rows:
        return 0, 0, 0
    received_at = received_at or datetime.now(UTC)
    rounds: list[list[dict[str, Any]]] = []
    seen: dict[tuple[str, int], int] = defaultdict(int)
    for row in rows:
        key = (row["meter_id"], row["interval_start"])
        position = seen[key]
        seen[key] += 1
        if position == len(rounds):
            rounds.append([])
        rounds[position].append(row)
    dialect = connection.dialect.name
    connection.execute(text(STAGING_DDL["postgresql" if dialect == "postgresql" else "sqlite"]))
    accepted = corrected = 0
    params = {"source": source, "received_at": received_at}
    for batch in rounds:
        connection.execute(text("DELETE FROM _staging_meter_readings"))
        bulk_insert(connection, STAGING, batch)
        inserted = connection.execute(INSERT_NEW, params).rowcount
        if inserted == len(batch):  # nothing clashed: no correction or fill to look for
            accepted += inserted
            continue
        fixed = connection.execute(INSERT_CORRECTIONS, params).rowcount
        updated = connection.execute(APPLY_UPDATES, params).rowcount
        accepted += inserted + (updated - fixed)
        corrected += fixed
    connection.execute(text("DELETE FROM _staging_meter_readings"))
    return accepted, len(rows) - accepted - corrected, corrected


# -------------------------------------------------------------------------- energy series


def owned_meter(session: Session, account: Account, meter: str) -> Meter:
    try:
        found = find_meter(session, meter)
    except ReadingRejected as exc:
        raise MeterNotFound(exc.reason) from None
    if found is None:
        raise MeterNotFound(f"no meter {meter}", meter_id=meter)
    meter_id = found.meter_id
    if found.owner_id != account.id:
        raise MeterAccessDenied(f"meter {meter_id} belongs to another account", meter_id=meter_id)
    return found


def energy_series(
    session: Session,
    account: Account,
    meter: str,
    *,
    direction: Direction,
    aggregation: Aggregation,
    start: int,
    end: int,
) -> EnergySeries:
    """Consumption (import) or generation (export) of an owned meter, per 15 min or hour."""
    found = owned_meter(session, account, meter)
    column = col(MeterReading.import_wh if direction == "consumption" else MeterReading.export_wh)
    rows = session.exec(
        select(MeterReading.interval_start, column)
        .where(
            MeterReading.meter_id == found.meter_id,
            MeterReading.interval_start >= start,
            MeterReading.interval_start < end,
            column.is_not(None),
        )
        .order_by(col(MeterReading.interval_start))
    ).all()
    bucket = 3600 if aggregation == "hourly" else INTERVAL_SECONDS
    sums: dict[int, list[int]] = {}
    for interval_start, wh in rows:
        key = interval_start // bucket * bucket
        total = sums.setdefault(key, [0, 0])
        total[0] += wh or 0  # never NULL: filtered out above
        total[1] += 1
    points = [
        EnergyPoint(
            start=datetime.fromtimestamp(k, UTC),
            end=datetime.fromtimestamp(k + bucket, UTC),
            wh=wh,
            intervals=n,
        )
        for k, (wh, n) in sorted(sums.items())
    ]
    return EnergySeries(
        meterId=found.meter_id, direction=direction, aggregation=aggregation, points=points
    )

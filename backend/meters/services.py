"""Meter registry, reading ingestion (one core for REST and MQTT) and energy series.

Ingestion: validate every reading (backend/meters/validation.py), then store the valid ones
in one set-based pass: bulk load into a temporary staging table (PostgreSQL COPY, SQLite
executemany, via indexer/bulk.py), then
  1. INSERT ... SELECT ... ON CONFLICT DO NOTHING      -> new intervals (accepted)
  2. INSERT INTO reading_corrections ... JOIN          -> stored value differs (corrected)
  3. UPDATE meter_readings ... FROM staging            -> apply corrections, fill a missing
                                                          direction (accepted)
Everything else is an exact duplicate. A batch holding the same interval twice is stored in
rounds (first occurrences, then second ones, ...; message order, backend/meters/batch.py) so
in-batch repeats follow the same rules and the last one wins.
On PostgreSQL readings are stored as runs (backend/meters/runs.py): a batch of new intervals
is one binary COPY of runs; the merge above runs against the `meter_readings` view under the
batch's (meter, day) locks, with NOT EXISTS instead of ON CONFLICT.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from eth_utils import to_checksum_address
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    MetaData,
    String,
    Table,
    bindparam,
    or_,
    text,
)
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from backend.accounts.models import Account, Role
from backend.audit import chain as audit
from backend.audit.chain import AuditAction
from backend.chain import clock
from backend.core.config import Settings, get_settings
from backend.core.utc import utc_now
from backend.market.orders import meter_id as owner_bound_meter_id
from backend.meters import series, trust
from backend.meters.batch import (
    Columns,
    PlainReading,
    Rules,
    decode_plain,
    superseded,
    validate_batch,
    validate_plain,
)
from backend.meters.broker_auth import mosquitto_hash
from backend.meters.broker_auth import verify as verify_mqtt
from backend.meters.errors import (
    MeterAccessDenied,
    MeterAlreadyRegistered,
    MeterNameInvalid,
    MeterNotApproved,
    MeterNotFound,
    MeterSigningKeyMissing,
    ReadingBatchTooLarge,
    ReadingsMalformed,
)
from backend.meters.models import INTERVAL_SECONDS, Meter, MeterReading, MeterStatus
from backend.meters.runs import copy_runs, day_bounds, lock_rows
from backend.meters.schemas import (
    Aggregation,
    Direction,
    EnergySeries,
    IngestResult,
    MeterApproval,
    MeterCreate,
    Rejection,
    Superseded,
)
from backend.meters.validation import (
    MeterLimits,
    ReadingRejected,
    normalise_meter_id,
    shown,
)
from indexer.bulk import bulk_insert

log = logging.getLogger("gridledger.meters.ingest")

STAGING = Table(
    "_staging_meter_readings",
    MetaData(),
    Column("idx", BigInteger),  # the reading's position in the request
    Column("meter_id", String(66)),
    Column("interval_start", BigInteger),
    Column("import_wh", BigInteger),
    Column("export_wh", BigInteger),
    Column("voltage_v", Float),
    Column("current_a", Float),
    Column("power_factor", Float),
    Column("quality", String(16)),
    Column("verified", Boolean),
    Column("signature", String(132)),
    Column("signer", String(42)),
)
STAGING_DDL = {
    "postgresql": "CREATE TEMP TABLE IF NOT EXISTS _staging_meter_readings (idx bigint, "
    "meter_id varchar(66), interval_start bigint, import_wh bigint, export_wh bigint, "
    "voltage_v double precision, current_a double precision, power_factor double precision, "
    "quality varchar(16), verified boolean, signature varchar(132), signer varchar(42)) "
    "ON COMMIT DELETE ROWS",
    "sqlite": "CREATE TEMP TABLE IF NOT EXISTS _staging_meter_readings (idx INTEGER, "
    "meter_id TEXT, interval_start INTEGER, import_wh INTEGER, export_wh INTEGER, "
    "voltage_v REAL, current_a REAL, power_factor REAL, quality TEXT, verified BOOLEAN, "
    "signature TEXT, signer TEXT)",
}
JOINED = "r.meter_id = s.meter_id AND r.interval_start = s.interval_start"
# on PostgreSQL `meter_readings` unnests runs per meter and day (migration i16_reading_runs):
# naming the day lets the join find the one run holding the interval by its key
DAY_JOINED = (
    f"{JOINED} AND r.day = s.interval_start - mod(mod(s.interval_start, 86400) + 86400, 86400)"
)
DIFFERS = "(s.import_wh <> r.import_wh OR s.export_wh <> r.export_wh)"
FILLS = (
    "(s.import_wh IS NOT NULL AND r.import_wh IS NULL) "
    "OR (s.export_wh IS NOT NULL AND r.export_wh IS NULL)"
)
# A verified reading is a complete statement of its interval (what was signed): it replaces
# both values, so dropping a stored value is a correction too. An unverified one only changes
# the values it carries.
FIXES = (
    f"(CASE WHEN s.verified THEN ({DIFFERS} OR (s.import_wh IS NULL AND r.import_wh IS NOT NULL) "
    f"OR (s.export_wh IS NULL AND r.export_wh IS NOT NULL)) ELSE {DIFFERS} END)"
)
CHANGES = f"({FIXES} OR {FILLS})"
NEW_IMPORT = "CASE WHEN s.verified THEN s.import_wh ELSE COALESCE(s.import_wh, r.import_wh) END"
NEW_EXPORT = "CASE WHEN s.verified THEN s.export_wh ELSE COALESCE(s.export_wh, r.export_wh) END"
# Who could lie: the owner posts unsigned readings, and holds every reading its meter ever
# signed. So a verified value changes only through a metering data provider: an unverified
# reading cannot replace it, nor can a replayed (older or other) meter signature.
GUARDED = f"r.verified AND {CHANGES}"
DELETE_REFUSED = text("DELETE FROM _staging_meter_readings WHERE idx IN :ids").bindparams(
    bindparam("ids", expanding=True)
)
INSERT_COLUMNS = (
    "INSERT INTO meter_readings (meter_id, interval_start, interval_s, import_wh, export_wh, "
    "voltage_v, current_a, power_factor, quality, revision, source, verified, signature, signer, "
    "received_at) "
    f"SELECT meter_id, interval_start, {INTERVAL_SECONDS}, import_wh, export_wh, voltage_v, "
    "current_a, power_factor, quality, 0, :source, verified, signature, signer, :received_at "
    "FROM _staging_meter_readings s "
)


@dataclass(frozen=True)
class Merge:
    """The merge's statements for one layout: the row table (SQLite) or the runs' view
    (PostgreSQL: no ON CONFLICT on a view; the batch's (meter, day) locks make NOT EXISTS
    exact, and the view's INSTEAD OF triggers write the runs)."""

    select_refused: Any
    insert_new: Any
    insert_corrections: Any
    apply_updates: Any

    @classmethod
    def of(cls, joined: str, insert_new: str) -> Merge:
        return cls(
            text(
                "SELECT s.idx, r.signer FROM _staging_meter_readings s JOIN meter_readings r "
                f"ON {joined} WHERE {GUARDED}"
            ),
            text(insert_new),
            text(
                "INSERT INTO reading_corrections (meter_id, interval_start, revision, "
                "previous_import_wh, previous_export_wh, import_wh, export_wh, "
                "previous_verified, previous_signer, verified, signer, source, received_at) "
                f"SELECT r.meter_id, r.interval_start, r.revision + 1, r.import_wh, "
                f"r.export_wh, {NEW_IMPORT}, {NEW_EXPORT}, r.verified, r.signer, s.verified, "
                "s.signer, :source, :received_at "
                f"FROM _staging_meter_readings s JOIN meter_readings r ON {joined} WHERE {FIXES}"
            ),
            text(
                f"UPDATE meter_readings AS r SET import_wh = {NEW_IMPORT}, "
                f"export_wh = {NEW_EXPORT}, "
                f"revision = r.revision + CASE WHEN {FIXES} THEN 1 ELSE 0 END, "
                "verified = s.verified, signature = s.signature, signer = s.signer, "
                "source = :source, received_at = :received_at "
                "FROM _staging_meter_readings s "
                f"WHERE {joined} AND ({CHANGES} OR (s.verified AND NOT r.verified))"
            ),
        )


ROW_MERGE = Merge.of(
    JOINED, INSERT_COLUMNS + "WHERE true ON CONFLICT (meter_id, interval_start) DO NOTHING"
)
RUN_MERGE = Merge.of(
    DAY_JOINED,
    INSERT_COLUMNS + f"WHERE NOT EXISTS (SELECT 1 FROM meter_readings r WHERE {DAY_JOINED})",
)


@dataclass
class Stored:
    """What `store_readings` did with a batch of validated rows."""

    accepted: int = 0
    duplicate: int = 0
    corrected: int = 0
    refused: dict[int, str] = field(default_factory=dict)  # row idx -> reason


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
        signing_key=to_checksum_address(data.signing_key) if data.signing_key else None,
    )
    session.add(meter)
    session.commit()
    session.refresh(meter)
    return meter


def list_meters(
    session: Session, account: Account, status: MeterStatus | None = None
) -> list[Meter]:
    """The caller's meters; a registrar's view is every meter (its queue: `status=pending`)."""
    query = select(Meter).order_by(col(Meter.created_at), col(Meter.meter_id))
    if not account.has_role(Role.REGISTRAR):
        query = query.where(Meter.owner_id == account.id)
    if status is not None:
        query = query.where(Meter.status == status)
    return list(session.exec(query.limit(1_000)).all())


def approve_meter(session: Session, registrar: Account, meter: Meter, data: MeterApproval) -> Meter:
    """Approve (or re-approve: capacity, key rotation) `meter`: from now on readings signed with
    its key are verified and its export is capped at the approved capacity. Not committed: the
    route commits once the chain has it too."""
    key = data.signing_key or meter.signing_key
    if key is None:
        raise MeterSigningKeyMissing(
            f"meter {meter.meter_id} has no signing key: give signing_key", meter_id=meter.meter_id
        )
    meter.signing_key = to_checksum_address(key)
    meter.approved_capacity_w = data.capacity_w
    meter.status = MeterStatus.APPROVED
    meter.approved_by, meter.approved_at = registrar.id, utc_now()
    session.add(meter)
    audit.record(
        session,
        AuditAction.METER_APPROVED,
        actor_id=registrar.id,
        subject=meter.meter_id,
        details={"capacity_w": data.capacity_w, "signing_key": meter.signing_key},
    )
    return meter


def suspend_meter(session: Session, meter: Meter, *, by: Account) -> Meter:
    """Withdraw `meter`'s approval: its signatures verify nothing until it is re-approved."""
    if meter.status != MeterStatus.APPROVED:
        raise MeterNotApproved(
            f"meter {meter.meter_id} is {meter.status}, not approved", meter_id=meter.meter_id
        )
    meter.status = MeterStatus.SUSPENDED
    session.add(meter)
    audit.record(session, AuditAction.METER_SUSPENDED, actor_id=by.id, subject=meter.meter_id)
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


def get_meter(session: Session, meter: str) -> Meter:
    """`find_meter`, or MeterNotFound."""
    try:
        found = find_meter(session, meter)
    except ReadingRejected as exc:
        raise MeterNotFound(exc.reason) from None
    if found is None:
        raise MeterNotFound(f"no meter {meter}", meter_id=meter)
    return found


METER_LIMITS = (
    "SELECT meter_id, name, kind, capacity_w, approved_capacity_w, owner_id, status, "
    "signing_key FROM meters WHERE meter_id = ANY(%s) OR name = ANY(%s)"
)


def meter_limits(connection: Connection, keys: set[str]) -> dict[str, MeterLimits]:
    """Limits of the meters named by `keys` (normalised ids or names), keyed by those keys."""
    if not keys:
        return {}
    ids = sorted(k for k in keys if k.startswith("0x"))
    names = sorted(k for k in keys if not k.startswith("0x"))
    driver = connection.connection.driver_connection
    rows: Any
    if isinstance(driver, psycopg.Connection):  # the bulk path: no statement to build
        rows = driver.execute(METER_LIMITS, (ids, names))
    else:
        rows = connection.execute(
            sa_select(  # more columns than sqlmodel's typed overloads of select
                col(Meter.meter_id),
                col(Meter.name),
                col(Meter.kind),
                col(Meter.capacity_w),
                col(Meter.approved_capacity_w),
                col(Meter.owner_id),
                col(Meter.status),
                col(Meter.signing_key),
            ).where(or_(col(Meter.meter_id).in_(ids), col(Meter.name).in_(names)))
        )
    limits: dict[str, MeterLimits] = {}
    for meter_id, name, kind, capacity, approved, owner, status, key in rows:
        found = MeterLimits(
            meter_id,
            kind,
            capacity if approved is None else approved,
            owner,
            status,
            key,
            capacity_approved=approved is not None,
        )
        for named in (meter_id, name):
            if named in keys:
                limits[named] = found
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
            rejections.append(Rejection(index=len(items), reason=f"invalid JSON: {exc}"))
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
    provider: str | None = None,
) -> IngestResult:
    """Validate and store `readings`; counts per outcome and the reason of every rejection.

    With `sender_id`, only readings of meters that account owns are accepted. `provider` is
    the address of the metering data provider posting them: its readings are verified, signed
    or not; anyone else's are verified only by a valid meter signature (backend/meters/trust).
    `settings` defaults to the process settings (`get_settings()`).
    """
    settings = settings or get_settings()
    prior = list(prior_rejections or [])
    skip = {r.index for r in prior} | {i for i, r in enumerate(readings) if r is _UNPARSABLE}
    meter_values = {m for r in readings if type(r) is dict and type(m := r.get("meterId")) is str}
    return _ingest(
        session,
        Batch(
            len(readings),
            meter_values,
            lambda meters, rules: validate_batch(readings, meters, rules, skip=skip),
            readings.__getitem__,
            prior,
        ),
        source=source,
        now=now,
        settings=settings,
        sender_id=sender_id,
        provider=provider,
    )


def ingest_body(
    session: Session,
    body: bytes,
    content_type: str,
    *,
    source: str,
    now: int | None = None,
    settings: Settings | None = None,
    sender_id: uuid.UUID | None = None,
    provider: str | None = None,
) -> IngestResult:
    """`ingest_readings` of a bulk body (JSON array or NDJSON, `parse_bulk_body`). A JSON array
    of plain readings (batch.PlainReading, the usual case) is decoded typed and validated by
    columns; any other body is parsed and validated the general way, with the same outcome."""
    settings = settings or get_settings()
    plain = None
    if "ndjson" not in content_type and "jsonl" not in content_type:
        plain = decode_plain(body) if body.lstrip()[:1] == b"[" else None
    if plain is None:
        readings, unparsable = parse_bulk_body(body, content_type)
        return ingest_readings(
            session,
            readings,
            source=source,
            now=now,
            settings=settings,
            prior_rejections=unparsable,
            sender_id=sender_id,
            provider=provider,
        )
    return ingest_plain(
        session,
        plain,
        source=source,
        now=now,
        settings=settings,
        sender_id=sender_id,
        provider=provider,
    )


def ingest_plain(
    session: Session,
    readings: Sequence[PlainReading],
    *,
    source: str,
    now: int | None = None,
    settings: Settings | None = None,
    sender_id: uuid.UUID | None = None,
    provider: str | None = None,
) -> IngestResult:
    """`ingest_readings` of readings decoded typed (batch.PlainReading), validated by columns."""
    settings = settings or get_settings()
    return _ingest(
        session,
        Batch(
            len(readings),
            {r.meter_id for r in readings},
            lambda meters, rules: validate_plain(readings, meters, rules),
            lambda i: readings[i].as_dict(),
        ),
        source=source,
        now=now,
        settings=settings,
        sender_id=sender_id,
        provider=provider,
    )


@dataclass
class Batch:
    """What `_ingest` needs of a batch, however it was parsed: its size, the meters it names
    (as sent), its column validation, a reading by index (echoed in rejections), and the
    rejections made while parsing it."""

    size: int
    meter_values: set[str]
    validate: Callable[[dict[str, MeterLimits], Rules], tuple[Columns, dict[int, str]]]
    reading: Callable[[int], object]
    prior: list[Rejection] = field(default_factory=list)


def _ingest(
    session: Session,
    batch: Batch,
    *,
    source: str,
    now: int | None,
    settings: Settings,
    sender_id: uuid.UUID | None,
    provider: str | None,
) -> IngestResult:
    if batch.size > settings.meter_max_batch:
        raise ReadingBatchTooLarge(
            f"{batch.size} readings; at most {settings.meter_max_batch} per request"
        )
    now = clock.now(settings) if now is None else now
    clock_at = time.perf_counter()
    connection = session.connection()
    candidates: set[str] = set()
    for value in batch.meter_values:
        with contextlib.suppress(ReadingRejected):
            candidates.add(normalise_meter_id(value))
    meters = meter_limits(connection, candidates)
    looked_up = time.perf_counter()
    rules = Rules(now, settings.meter_clock_skew_s, settings.meter_max_import_wh, sender_id)
    rows, rejected = batch.validate(meters, rules)
    mark_trust(session, rows, rejected, meters, provider, trust.reading_domain(settings))
    validated = time.perf_counter()
    received_at = datetime.now(UTC)
    lost: dict[int, int] = {}
    path = "copy"
    if copy_runs(connection, rows, source, received_at):  # no interval twice, none stored yet
        stored = Stored(accepted=len(rows))
    else:
        path = "merge"
        stored = store_readings(
            connection, rows.rows(), source, received_at, provider=provider is not None
        )
        lost = superseded(rows, stored.refused)
    written = time.perf_counter()
    session.commit()
    if log.isEnabledFor(logging.DEBUG):
        committed = time.perf_counter()
        log.debug(
            "ingest %s: %d readings, %d stored; ms lookup %.1f validate %.1f store %.1f "
            "commit %.1f",
            path,
            batch.size,
            len(rows),
            (looked_up - clock_at) * 1000,
            (validated - looked_up) * 1000,
            (written - validated) * 1000,
            (committed - written) * 1000,
        )
    rejected.update(stored.refused)
    rejections = batch.prior + [
        rejection(index, batch.reading(index), reason) for index, reason in rejected.items()
    ]
    rejections.sort(key=lambda r: r.index)
    return IngestResult(
        received=batch.size,
        accepted=stored.accepted,
        duplicate=stored.duplicate,
        corrected=stored.corrected,
        verified=verified_count(rows, stored.refused),
        rejected=len(rejections),
        rejections=rejections,
        superseded=len(lost),
        supersededReadings=[
            Superseded(
                index=index,
                by=by,
                meterId=echo(batch.reading(index), "meterId", 120),
                timestamp=echo(batch.reading(index), "timestamp", 40),
            )
            for index, by in sorted(lost.items())
        ],
    )


def verified_count(rows: Columns, refused: dict[int, str]) -> int:
    """How many of `rows` are verified and were not refused."""
    if not refused:
        return rows.verified.count(True)  # in C: a 10k batch's flags without a Python loop
    return sum(
        1
        for idx, verified in zip(rows.idx, rows.verified, strict=True)
        if verified and idx not in refused
    )


def mark_trust(
    session: Session,
    rows: Columns,
    rejected: dict[int, str],
    meters: dict[str, MeterLimits],
    provider: str | None,
    domain: trust.ReadingDomain | None,
) -> None:
    """Set `verified`, `signature` and `signer` of validated rows: a metering data provider's
    rows are verified; anyone else's only by a signature of the meter's approved key or of a
    metering data provider (trust.check_signatures, by columns). A malformed signature rejects
    its reading (into `rejected`)."""
    if provider is not None:
        rows.verified = [True] * len(rows)
        rows.signer = [provider] * len(rows)
    checked = trust.check_signatures(rows, meters, domain, provider=provider is not None)
    if checked.other_signers:
        signers = {rows.signer[p] for p in checked.other_signers}
        providers = metering_data_providers(session, {s for s in signers if s is not None})
        for position in checked.other_signers:
            rows.verified[position] = rows.signer[position] in providers
    for position, reason in checked.malformed.items():
        rejected[rows.idx[position]] = reason
    rows.drop(set(checked.malformed))


def metering_data_providers(session: Session, addresses: set[str]) -> set[str]:
    """Those of `addresses` (checksummed) that are accounts holding `meter_data_provider`."""
    accounts = session.exec(
        select(Account).where(col(Account.address).in_(sorted(a.lower() for a in addresses)))
    ).all()
    return {
        to_checksum_address(a.address)
        for a in accounts
        if a.active and a.has_role(Role.METER_DATA_PROVIDER)
    }


def rejection(index: int, reading: object, reason: str) -> Rejection:
    return Rejection(
        index=index,
        reason=reason,
        meterId=echo(reading, "meterId", 120),
        timestamp=echo(reading, "timestamp", 40),
    )


def echo(reading: object, key: str, limit: int) -> str | None:
    """A field of a rejected reading, shortened, to tell the sender which one it was."""
    if not isinstance(reading, dict) or reading.get(key) is None:
        return None
    value = reading[key]
    return value[:limit] if isinstance(value, str) else shown(value, limit)


def store_readings(
    connection: Connection,
    rows: list[dict[str, Any]],
    source: str,
    received_at: datetime | None = None,
    *,
    provider: bool = False,
) -> Stored:
    """Store validated rows (with `idx`, `verified`, `signature`, `signer`). Caller commits.
    Rows posted by a metering data provider (`provider`) may correct verified readings."""
    stored = Stored()
    if not rows:
        return stored
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
    params = {"source": source, "received_at": received_at}
    if connection.dialect.name != "postgresql":
        connection.execute(text(STAGING_DDL["sqlite"]))
        return _merge(connection, rounds, ROW_MERGE, params, provider, len(rows))
    lock_rows(connection, rows)  # every writer of the runs holds them: NOT EXISTS is exact
    connection.execute(text(STAGING_DDL["postgresql"]))
    return _merge(connection, rounds, RUN_MERGE, params, provider, len(rows))


def _merge(
    connection: Connection,
    rounds: list[list[dict[str, Any]]],
    merge: Merge,
    params: dict[str, Any],
    provider: bool,
    total: int,
) -> Stored:
    """The merge of `rounds` (no interval twice in a round) through the staging table."""
    stored = Stored()
    for batch in rounds:
        connection.execute(text("DELETE FROM _staging_meter_readings"))
        bulk_insert(connection, STAGING, batch)
        inserted = connection.execute(merge.insert_new, params).rowcount
        stored.accepted += inserted
        if inserted == len(batch):  # nothing clashed: no correction or fill to look for
            continue
        refused = [] if provider else connection.execute(merge.select_refused).all()
        if refused:
            connection.execute(DELETE_REFUSED, {"ids": [idx for idx, _ in refused]})
            for idx, signer in refused:
                stored.refused[idx] = (
                    f"the interval has a verified reading (vouched for by {signer}); only a "
                    "metering data provider can correct it"
                )
        fixed = connection.execute(merge.insert_corrections, params).rowcount
        updated = connection.execute(merge.apply_updates, params).rowcount
        stored.accepted += updated - fixed
        stored.corrected += fixed
    connection.execute(text("DELETE FROM _staging_meter_readings"))
    stored.duplicate = total - stored.accepted - stored.corrected - len(stored.refused)
    return stored


# -------------------------------------------------------------------------- energy series


def owned_meter(session: Session, account: Account, meter: str) -> Meter:
    found = get_meter(session, meter)
    if found.owner_id != account.id:
        raise MeterAccessDenied(
            f"meter {found.meter_id} belongs to another account", meter_id=found.meter_id
        )
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
        select(MeterReading.interval_start, column, MeterReading.verified)
        .where(
            MeterReading.meter_id == found.meter_id,
            MeterReading.interval_start >= start,
            MeterReading.interval_start < end,
            column.is_not(None),
            *day_bounds(session, start, end),
        )
        .order_by(col(MeterReading.interval_start))
    ).all()
    return EnergySeries(
        meterId=found.meter_id,
        direction=direction,
        aggregation=aggregation,
        points=series.points_of(rows, aggregation),
    )

"""The VTN's services: plain functions over a session, called by the openleadr handlers in
vtn.py and (for `publish_event`) by whatever decides a DR event (backend/dr, the CLI).

Events cross processes through the database: `publish_event` writes the event and one
delivery per VEN; the VTN process moves undelivered ones into openleadr's per-VEN queues
(`pending_deliveries` / `mark_queued`), where pull VENs collect them with oadrPoll.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from eth_utils import to_checksum_address
from sqlmodel import Session, col, select

from backend.accounts.models import Account, Role
from backend.core.config import Settings
from backend.core.utc import utc_now
from backend.meters.models import INTERVAL_SECONDS, Meter
from backend.meters.schemas import IngestResult
from backend.meters.services import ingest_readings
from backend.meters.validation import iso
from backend.openadr.errors import EventInvalid, VenExists, VenNotFound
from backend.openadr.models import (
    SOURCE,
    EventDelivery,
    OptSource,
    OptType,
    ReportValue,
    SignalName,
    Ven,
    VenMeter,
    VtnEvent,
)

# openleadr's signal type per signal name (IEC 62746-10-1 Table 2)
SIGNAL_TYPES = {
    SignalName.SIMPLE: "level",
    SignalName.LOAD_DISPATCH: "setpoint",
    SignalName.ELECTRICITY_PRICE: "price",
}
SCALES = {"none": 1, "k": 1_000, "M": 1_000_000, "m": 0.001}
READING_MEASUREMENT = "RealEnergy"  # openleadr's description of energyReal (Wh)


def openadr_fingerprint(sha256_hex: str) -> str:
    """The OpenADR form of a certificate fingerprint (openleadr's: the last 10 bytes of the
    SHA-256, upper-case, colon-separated) from the full hex one we store."""
    tail = sha256_hex.lower()[44:64]
    return ":".join(tail[i : i + 2].upper() for i in range(0, 20, 2))


def add_ven(
    session: Session,
    *,
    ven_id: str,
    ven_name: str,
    account_id: uuid.UUID,
    cert_fingerprint: str,
    meter_ids: Sequence[str] = (),
) -> Ven:
    """Make a VEN known: the account it acts for, the meters it reports for, its certificate."""
    clash = session.exec(
        select(Ven).where((col(Ven.ven_id) == ven_id) | (col(Ven.ven_name) == ven_name))
    ).first()
    if clash is not None:
        raise VenExists(f"VEN {ven_id!r} / {ven_name!r} exists")
    ven = Ven(
        ven_id=ven_id,
        ven_name=ven_name,
        account_id=account_id,
        cert_fingerprint=cert_fingerprint.lower().replace(":", ""),
    )
    session.add(ven)
    session.flush()
    session.add_all(VenMeter(ven_id=ven_id, meter_id=m) for m in meter_ids)
    session.flush()
    return ven


def find_ven(session: Session, *, ven_id: str | None = None, ven_name: str | None = None) -> Ven:
    """The active VEN with this id (or, without one, this name)."""
    if ven_id is not None:
        ven = session.get(Ven, ven_id)
    elif ven_name is not None:
        ven = session.exec(select(Ven).where(Ven.ven_name == ven_name)).first()
    else:
        ven = None
    if ven is None or not ven.active:
        raise VenNotFound(f"no active VEN {ven_id or ven_name!r}")
    return ven


def register(
    session: Session, *, ven_id: str | None, ven_name: str, connection_fingerprint: str | None
) -> Ven | None:
    """EiRegisterParty create/re-register: the known VEN gets a new registration id, when its
    connection's certificate (OpenADR fingerprint; None over plain HTTP) is the registered
    one. None when refused (unknown VEN, other certificate)."""
    try:
        ven = find_ven(session, ven_id=ven_id, ven_name=None if ven_id else ven_name)
    except VenNotFound:
        return None
    if ven.ven_name != ven_name:
        return None
    expected = openadr_fingerprint(ven.cert_fingerprint)
    if connection_fingerprint is not None and connection_fingerprint != expected:
        return None
    ven.registration_id = uuid.uuid4().hex
    ven.registered_at = utc_now()
    session.add(ven)
    session.flush()
    return ven


def cancel_registration(session: Session, *, ven_id: str) -> None:
    """EiRegisterParty cancel: the VEN stays known but must register again."""
    ven = find_ven(session, ven_id=ven_id)
    ven.registration_id = None
    session.add(ven)
    session.flush()


@dataclass(frozen=True)
class Interval:
    start: datetime  # UTC
    duration_s: int
    value: float


def publish_event(
    session: Session,
    *,
    signal: SignalName,
    intervals: Sequence[Interval],
    ven_ids: Sequence[str],
    market_context: str = "oadr://gridledger/dr",
    reference: str | None = None,
) -> VtnEvent:
    """Publish an event with one signal (SIMPLE level, LOAD_DISPATCH setpoint in W,
    ELECTRICITY_PRICE per kWh) to known VENs. The VTN process queues it for each VEN within
    `vtn_dispatch_interval_s`; each VEN's opt answer lands on its `EventDelivery`."""
    if not intervals:
        raise EventInvalid("an event needs at least one interval")
    if not ven_ids:
        raise EventInvalid("an event needs at least one VEN")
    for interval in intervals:
        if interval.start.tzinfo is None or interval.duration_s <= 0:
            raise EventInvalid("intervals need a UTC start and a positive duration")
    if signal == SignalName.SIMPLE and any(i.value not in (0, 1, 2, 3) for i in intervals):
        raise EventInvalid("SIMPLE levels are 0, 1, 2 or 3")
    for ven_id in ven_ids:
        find_ven(session, ven_id=ven_id)
    event = VtnEvent(
        signal_name=signal.value,
        signal_type=SIGNAL_TYPES[signal],
        market_context=market_context,
        intervals=[
            {"start": int(i.start.timestamp()), "duration_s": i.duration_s, "value": i.value}
            for i in intervals
        ],
        reference=reference,
    )
    session.add(event)
    session.flush()
    session.add_all(
        EventDelivery(id=uuid.uuid4().hex, event_id=event.id, ven_id=v) for v in ven_ids
    )
    session.flush()
    return event


def pending_deliveries(session: Session) -> list[tuple[EventDelivery, VtnEvent]]:
    """Deliveries the VTN has not queued yet, oldest event first."""
    rows = session.exec(
        select(EventDelivery, VtnEvent)
        .join(VtnEvent, col(VtnEvent.id) == col(EventDelivery.event_id))
        .where(col(EventDelivery.queued_at).is_(None))
        .order_by(col(VtnEvent.created_at))
    ).all()
    return [(d, e) for d, e in rows]


def requeue_unanswered(session: Session, *, now: datetime) -> int:
    """After a VTN restart (openleadr's queues live in memory): deliveries queued before but
    not answered, of events not over by `now`, are queued again. Returns how many."""
    rows = session.exec(
        select(EventDelivery, VtnEvent)
        .join(VtnEvent, col(VtnEvent.id) == col(EventDelivery.event_id))
        .where(col(EventDelivery.queued_at).is_not(None))
        .where(
            col(EventDelivery.opt_type).is_(None)
            | (col(EventDelivery.opt_source) == OptSource.SCHEDULE)
        )
    ).all()
    moment = now.timestamp()
    again = [d for d, e in rows if event_end(e) > moment]
    for delivery in again:
        delivery.queued_at = None
        session.add(delivery)
    session.flush()
    return len(again)


def event_end(event: VtnEvent) -> int:
    return max(int(i["start"]) + int(i["duration_s"]) for i in event.intervals)


def mark_queued(session: Session, delivery_id: str) -> None:
    delivery = session.get(EventDelivery, delivery_id)
    if delivery is not None:
        delivery.queued_at = utc_now()
        session.add(delivery)
        session.flush()


def record_opt(session: Session, *, ven_id: str, delivery_id: str, opt_type: str) -> bool:
    """A VEN's oadrCreatedEvent answer; a later answer replaces an earlier one. False when the
    event is not this VEN's."""
    delivery = session.get(EventDelivery, delivery_id)
    if delivery is None or delivery.ven_id != ven_id or opt_type not in set(OptType):
        return False
    delivery.opt_type = opt_type
    delivery.opt_source = OptSource.EVENT
    delivery.opt_id = None
    delivery.opted_at = utc_now()
    session.add(delivery)
    session.flush()
    return True


def is_delivery_of(session: Session, *, ven_id: str, delivery_id: str) -> bool:
    """Whether `delivery_id` is an eventID the VTN sent (queued) to `ven_id`."""
    delivery = session.get(EventDelivery, delivery_id)
    return delivery is not None and delivery.ven_id == ven_id and delivery.queued_at is not None


def meter_for(session: Session, *, ven_id: str, resource_id: str | None) -> str | None:
    """The meter a report's resourceID names (meter_id or meter name), if it is the VEN's."""
    if not resource_id:
        return None
    return session.exec(
        select(Meter.meter_id)
        .join(VenMeter, col(VenMeter.meter_id) == col(Meter.meter_id))
        .where(VenMeter.ven_id == ven_id)
        .where((col(Meter.meter_id) == resource_id) | (col(Meter.name) == resource_id))
    ).first()


def data_provider_address(session: Session, ven: Ven) -> str | None:
    """The VEN's account address when that account is an active metering data provider."""
    account = session.get(Account, ven.account_id)
    if account is None or not account.active or not account.has_role(Role.METER_DATA_PROVIDER):
        return None
    return to_checksum_address(account.address)


def record_report_values(
    session: Session,
    *,
    ven_id: str,
    resource_id: str,
    measurement: str,
    unit: str | None,
    scale: str | None,
    values: Sequence[tuple[datetime, float]],
    settings: Settings | None = None,
) -> int:
    """Store the (interval start, value) pairs of an oadrUpdateReport with provenance
    `openadr`; verified only when the VEN's account is a metering data provider. Energy on
    15-minute boundaries for one of the VEN's meters also goes to the readings
    (`forward_readings`). Returns the number of values stored."""
    ven = find_ven(session, ven_id=ven_id)
    factor = SCALES.get(scale or "none", 1)
    provider = data_provider_address(session, ven)
    verified = provider is not None
    meter_id = meter_for(session, ven_id=ven_id, resource_id=resource_id)
    rows = [
        ReportValue(
            ven_id=ven_id,
            meter_id=meter_id,
            resource_id=resource_id,
            measurement=measurement,
            unit=unit,
            at=int(at.timestamp()),
            value=float(value) * factor,
            verified=verified,
        )
        for at, value in values
    ]
    session.add_all(rows)
    session.flush()
    if meter_id is not None and measurement == READING_MEASUREMENT:
        forward_readings(
            session, ven=ven, meter_id=meter_id, rows=rows, provider=provider, settings=settings
        )
    return len(rows)


def forward_readings(
    session: Session,
    *,
    ven: Ven,
    meter_id: str,
    rows: Sequence[ReportValue],
    provider: str | None,
    settings: Settings | None = None,
) -> IngestResult | None:
    """Energy values on 15-minute boundaries (the energy of the interval starting there, Wh)
    also become meter readings (import), through the same validation as every other source,
    with source `openadr`: verified when the VEN is a metering data provider, else only for
    its own account's meters and unverified. Other values stay telemetry. Commits."""
    readings = [
        {"meterId": meter_id, "timestamp": iso(r.at), "importWh": round(r.value)}
        for r in rows
        if r.at % INTERVAL_SECONDS == 0 and r.value >= 0
    ]
    if not readings:
        return None
    return ingest_readings(
        session,
        readings,
        source=SOURCE,
        settings=settings,
        sender_id=None if provider else ven.account_id,
        provider=provider,
    )

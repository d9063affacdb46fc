"""The VTN's services on their own: fingerprints in OpenADR's form, who may register, what an
event may carry, whose opt answer counts, report values scaled and marked by provenance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from openleadr.utils import certificate_fingerprint
from sqlmodel import select

from backend.accounts.models import Account, Role
from backend.core.dev_ca import ensure_ca, issue_client_certificate
from backend.meters.models import MeterReading
from backend.openadr import services
from backend.openadr.enrolment import enrol_ven
from backend.openadr.errors import EventInvalid, VenExists, VenNotFound
from backend.openadr.models import EventDelivery, ReportValue, SignalName
from tests.fixtures.meters import NOW, seed_meters
from tests.fixtures.openadr import FP

START = datetime(2026, 12, 1, 17, tzinfo=UTC)


def test_openadr_fingerprint_is_what_openleadr_computes(tmp_path):
    issued = issue_client_certificate(ensure_ca(tmp_path), "ven")
    assert services.openadr_fingerprint(issued.fingerprint) == certificate_fingerprint(
        issued.cert_pem()
    )


def test_only_the_known_name_with_its_certificate_registers(house):
    session, owner, _solar = house
    ours = services.openadr_fingerprint(FP)
    assert (
        services.register(session, ven_id=None, ven_name="stranger", connection_fingerprint=ours)
        is None
    )
    assert (
        services.register(
            session, ven_id="ven-house", ven_name="other", connection_fingerprint=ours
        )
        is None
    )
    assert (
        services.register(
            session, ven_id="ven-house", ven_name="house", connection_fingerprint="00:11"
        )
        is None
    )
    ven = services.register(session, ven_id=None, ven_name="house", connection_fingerprint=ours)
    assert ven is not None and ven.registration_id
    services.cancel_registration(session, ven_id="ven-house")
    assert services.find_ven(session, ven_id="ven-house").registration_id is None
    with pytest.raises(VenExists):
        services.add_ven(
            session, ven_id="ven-2", ven_name="house", account_id=owner.id, cert_fingerprint=FP
        )


def test_events_are_checked_and_give_each_ven_its_own_delivery(house):
    session, _owner, _solar = house
    one = [services.Interval(START, 900, 2)]
    with pytest.raises(EventInvalid, match="levels"):
        services.publish_event(
            session,
            signal=SignalName.SIMPLE,
            intervals=[services.Interval(START, 900, 7)],
            ven_ids=["ven-house"],
        )
    with pytest.raises(EventInvalid, match="UTC"):
        services.publish_event(
            session,
            signal=SignalName.SIMPLE,
            intervals=[services.Interval(START.replace(tzinfo=None), 900, 1)],
            ven_ids=["ven-house"],
        )
    with pytest.raises(EventInvalid):
        services.publish_event(session, signal=SignalName.SIMPLE, intervals=one, ven_ids=[])
    with pytest.raises(VenNotFound):
        services.publish_event(session, signal=SignalName.SIMPLE, intervals=one, ven_ids=["nobody"])
    event = services.publish_event(
        session, signal=SignalName.ELECTRICITY_PRICE, intervals=one, ven_ids=["ven-house"]
    )
    assert event.signal_type == "price"
    assert event.intervals == [{"start": int(START.timestamp()), "duration_s": 900, "value": 2}]
    [(delivery, same)] = services.pending_deliveries(session)
    assert same.id == event.id
    services.mark_queued(session, delivery.id)
    assert services.pending_deliveries(session) == []
    assert not services.record_opt(
        session, ven_id="other", delivery_id=delivery.id, opt_type="optIn"
    )
    assert not services.record_opt(
        session, ven_id="ven-house", delivery_id=delivery.id, opt_type="maybe"
    )
    assert services.record_opt(
        session, ven_id="ven-house", delivery_id=delivery.id, opt_type="optOut"
    )
    assert session.get(EventDelivery, delivery.id).opt_type == "optOut"


def test_a_restarted_vtn_queues_unanswered_deliveries_of_running_events_again(house):
    session, _owner, _solar = house
    answered, waiting, over = (
        services.publish_event(
            session,
            signal=SignalName.SIMPLE,
            intervals=[services.Interval(start, 900, 1)],
            ven_ids=["ven-house"],
        )
        for start in (START, START, START - timedelta(days=1))
    )
    deliveries = {d.event_id: d for d, _e in services.pending_deliveries(session)}
    for delivery in deliveries.values():
        services.mark_queued(session, delivery.id)
    services.record_opt(
        session, ven_id="ven-house", delivery_id=deliveries[answered.id].id, opt_type="optIn"
    )
    assert services.requeue_unanswered(session, now=START) == 1
    assert [e.id for _d, e in services.pending_deliveries(session)] == [waiting.id]
    assert over.id != waiting.id


def test_report_values_are_scaled_and_unverified_from_a_participant(house):
    session, _owner, solar = house
    stored = services.record_report_values(
        session,
        ven_id="ven-house",
        resource_id=solar.name,
        measurement="RealEnergy",
        unit="Wh",
        scale="k",
        values=[(START, 1.25)],
    )
    other = services.record_report_values(
        session,
        ven_id="ven-house",
        resource_id="not-my-meter",
        measurement="RealEnergy",
        unit="Wh",
        scale=None,
        values=[(START, 3)],
    )
    rows = session.exec(select(ReportValue).order_by(ReportValue.value)).all()
    assert (stored, other) == (1, 1)
    assert [(r.value, r.meter_id, r.source, r.verified) for r in rows] == [
        (3.0, None, "openadr", False),
        (1_250.0, solar.meter_id, "openadr", False),
    ]


def report_energy(session, ven_id: str, meter: str, at: int, value: float) -> None:
    services.record_report_values(
        session,
        ven_id=ven_id,
        resource_id=meter,
        measurement="RealEnergy",
        unit="Wh",
        scale="none",
        values=[(datetime.fromtimestamp(at, UTC), value)],
    )


def test_energy_on_quarter_hours_becomes_readings_verified_only_from_a_data_provider(house):
    session, _owner, solar = house
    provider = Account(
        email="mdp@example.org", address="0x" + "cc" * 20, roles=[Role.METER_DATA_PROVIDER.value]
    )
    session.add(provider)
    session.flush()
    services.add_ven(
        session,
        ven_id="ven-headend",
        ven_name="headend",
        account_id=provider.id,
        cert_fingerprint="cd" * 32,
        meter_ids=[solar.meter_id],
    )
    report_energy(session, "ven-house", solar.name, NOW - 900, 420)
    report_energy(session, "ven-house", solar.name, NOW - 899, 17)  # not a boundary: telemetry
    report_energy(session, "ven-headend", solar.meter_id, NOW - 1800, 300)
    readings = session.exec(
        select(MeterReading)
        .where(MeterReading.meter_id == solar.meter_id)
        .order_by(MeterReading.interval_start)
    ).all()
    assert [(r.interval_start, r.import_wh, r.source, r.verified) for r in readings] == [
        (NOW - 1800, 300, "openadr", True),
        (NOW - 900, 420, "openadr", False),
    ]
    assert len(session.exec(select(ReportValue)).all()) == 3


def test_enrolment_issues_a_certificate_whose_fingerprint_registers(db_session, tmp_path):
    owner, _other, solar, _house = seed_meters(db_session)
    creds = enrol_ven(
        db_session,
        tls_dir=tmp_path / "tls",
        out_dir=tmp_path / "vens",
        ven_name="battery",
        account_id=owner.id,
        meter_ids=[solar.meter_id],
    )
    pem = creds.cert_file.read_bytes()
    assert creds.key_file.stat().st_mode & 0o077 == 0
    assert creds.ca_file == tmp_path / "tls" / "ca.pem"
    fingerprint = certificate_fingerprint(pem)  # what the VTN sees on the connection
    ven = services.register(
        db_session, ven_id=creds.ven_id, ven_name="battery", connection_fingerprint=fingerprint
    )
    assert ven is not None and ven.cert_fingerprint == creds.fingerprint
    assert services.meter_for(db_session, ven_id=creds.ven_id, resource_id=solar.name) == (
        solar.meter_id
    )

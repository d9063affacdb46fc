"""The VTN against openleadr's own VEN (OpenADRClient) over real sockets, TLS with client
certificates: registration of known and unknown VENs, a VEN with another CA's certificate or
another VEN's certificate refused, events delivered and opted in/out (recorded), reports
landing in the store with provenance, cancellation and re-registration."""

from __future__ import annotations

import asyncio
import logging
import ssl
from datetime import UTC, datetime, timedelta

import aiohttp
from sqlmodel import Session, select

from backend.core.dev_ca import ensure_ca
from backend.openadr import services
from backend.openadr.models import EventDelivery, ReportValue, SignalName, Ven
from backend.openadr.vtn import Vtn
from tests.fixtures.openadr import VenFiles, client, run_with_vtn, until, ven_files

logging.getLogger("openleadr").setLevel(logging.CRITICAL)  # refused VENs log errors by design


def ven(engine, ven_id: str) -> Ven:
    with Session(engine) as session:
        row = session.get(Ven, ven_id)
        assert row is not None
        return row


def test_known_ven_registers_and_unknown_ven_is_refused(world):
    settings, engine, certs, _ca, _meter = world

    async def scenario(vtn):
        known = client(settings, "house", certs["house"], settings.tls_ca_file, "ven-house")
        unknown = client(settings, "stranger", certs["house"], settings.tls_ca_file, None)
        await known.create_party_registration(ven_id="ven-house")
        await unknown.create_party_registration()
        results = (known.registration_id, unknown.registration_id)
        for c in (known, unknown):
            await c.client_session.close()
        return results

    known_registration, unknown_registration = run_with_vtn(settings, engine, scenario)
    assert known_registration is not None
    assert ven(engine, "ven-house").registration_id == known_registration
    assert unknown_registration is None


def test_ven_presenting_another_vens_certificate_is_refused(world):
    settings, engine, certs, _ca, _meter = world

    async def scenario(vtn):
        impostor = client(settings, "house", certs["headend"], settings.tls_ca_file, "ven-house")
        await impostor.create_party_registration(ven_id="ven-house")
        await impostor.client_session.close()
        return impostor.registration_id

    assert run_with_vtn(settings, engine, scenario) is None
    assert ven(engine, "ven-house").registration_id is None


async def raw_post(settings, files: VenFiles) -> int | str:
    """Post garbage with `files` as client certificate: the HTTP status, or the error's name
    when the VTN ends the TLS connection."""
    context = ssl.create_default_context(cafile=str(settings.tls_ca_file))
    context.load_cert_chain(files.cert, files.key)
    async with aiohttp.ClientSession() as session:
        try:
            async with session.post(
                f"{settings.vtn_url}/EiRegisterParty",
                data=b"<x/>",
                headers={"Content-Type": "application/xml"},
                ssl=context,
            ) as response:
                return response.status
        except aiohttp.ClientError as exc:
            return type(exc).__name__


def test_ven_with_a_certificate_from_another_ca_is_refused_at_the_handshake(world, tmp_path):
    settings, engine, certs, _ca, _meter = world
    foreign = ven_files(ensure_ca(tmp_path / "foreign"), "house", tmp_path / "foreign-vens")

    async def scenario(vtn):
        rogue = client(settings, "house", foreign, settings.tls_ca_file, "ven-house")
        await rogue.create_party_registration(ven_id="ven-house")
        await rogue.client_session.close()
        return (
            rogue.registration_id,
            await raw_post(settings, foreign),
            await raw_post(settings, certs["house"]),
        )

    registration, foreign_outcome, own_outcome = run_with_vtn(settings, engine, scenario)
    assert registration is None
    assert foreign_outcome in {"ClientOSError", "ServerDisconnectedError"}  # TLS alert
    assert own_outcome == 200  # through TLS; refused in an oadrResponse (454, test_gate.py)
    assert ven(engine, "ven-house").registration_id is None


def test_events_reach_pull_vens_and_their_opt_answers_are_recorded(world):
    settings, engine, certs, _ca, _meter = world
    answers = {"house": "optIn", "headend": "optOut"}
    received: dict[str, list[str]] = {"house": [], "headend": []}
    start = datetime.now(UTC) + timedelta(minutes=5)

    async def scenario(vtn):
        vens = []
        for name in ("house", "headend"):
            c = client(settings, name, certs[name], settings.tls_ca_file, f"ven-{name}")

            async def on_event(event, name=name):
                signal = event["event_signals"][0]
                received[name].append(signal["signal_name"])
                return answers[name]

            c.add_handler("on_event", on_event)
            await c.run()
            vens.append(c)
        with Session(engine) as session:
            event = services.publish_event(
                session,
                signal=SignalName.LOAD_DISPATCH,
                intervals=[
                    services.Interval(start, 900, -2_000),
                    services.Interval(start + timedelta(seconds=900), 900, -1_000),
                ],
                ven_ids=["ven-house", "ven-headend"],
                reference="dr-event-1",
            )
            session.commit()
            event_id = event.id

        def answered() -> bool:
            with Session(engine) as session:
                rows = session.exec(
                    select(EventDelivery).where(EventDelivery.event_id == event_id)
                ).all()
                return len(rows) == 2 and all(r.opt_type for r in rows)

        await until(answered)
        first = opts_of(event_id)
        with Session(engine) as session:
            house_delivery = session.exec(
                select(EventDelivery).where(
                    EventDelivery.event_id == event_id, EventDelivery.ven_id == "ven-house"
                )
            ).one()
        # the house changes its mind: a second oadrCreatedEvent for the same event
        await vens[0].created_event(
            request_id="again", event_id=house_delivery.id, opt_type="optOut"
        )
        await until(lambda: opts_of(event_id)["ven-house"] == "optOut")
        for c in vens:
            await c.stop()
        return first, opts_of(event_id)

    def opts_of(event_id) -> dict[str, str | None]:
        with Session(engine) as session:
            rows = session.exec(select(EventDelivery).where(EventDelivery.event_id == event_id))
            return {r.ven_id: r.opt_type for r in rows}

    first, opts = run_with_vtn(settings, engine, scenario)
    assert first == {"ven-house": "optIn", "ven-headend": "optOut"}
    assert opts == {"ven-house": "optOut", "ven-headend": "optOut"}  # the house's later answer
    assert received == {"house": ["LOAD_DISPATCH"], "headend": ["LOAD_DISPATCH"]}


def test_reports_land_in_the_store_with_provenance(world):
    settings, engine, certs, _ca, meter_name = world

    async def scenario(vtn):
        vens = []
        for name, value in (("house", 1.5), ("headend", 2.0)):
            c = client(settings, name, certs[name], settings.tls_ca_file, f"ven-{name}")
            c.add_report(
                callback=lambda value=value: value,
                resource_id=meter_name,
                measurement="energy_real",
                unit="Wh",
                scale="k",
                sampling_rate=timedelta(seconds=1),
                report_duration=timedelta(seconds=60),
            )
            await c.run()
            vens.append(c)

        def both_reported() -> bool:
            with Session(engine) as session:
                return {r.ven_id for r in session.exec(select(ReportValue))} == {
                    "ven-house",
                    "ven-headend",
                }

        await until(both_reported, timeout=15)
        for c in vens:
            await c.stop()

    run_with_vtn(settings, engine, scenario)
    with Session(engine) as session:
        rows = session.exec(select(ReportValue)).all()
        meter_id = services.find_ven(session, ven_id="ven-house")
    by_ven = {r.ven_id: r for r in rows}
    house, headend = by_ven["ven-house"], by_ven["ven-headend"]
    assert (house.value, house.source, house.verified) == (1_500.0, "openadr", False)
    assert (headend.value, headend.source, headend.verified) == (2_000.0, "openadr", True)
    assert house.measurement == "RealEnergy" and house.meter_id is not None
    assert meter_id is not None


def test_cancelled_registration_must_register_again(world):
    settings, engine, certs, _ca, _meter = world

    async def scenario(vtn):
        c = client(settings, "house", certs["house"], settings.tls_ca_file, "ven-house")
        await c.create_party_registration(ven_id="ven-house")
        first = c.registration_id
        await c.cancel_party_registration()
        cancelled = ven(engine, "ven-house").registration_id
        await c.create_party_registration(ven_id="ven-house")
        again = c.registration_id
        await c.client_session.close()
        return first, cancelled, again

    first, cancelled, again = run_with_vtn(settings, engine, scenario)
    assert first is not None and cancelled is None
    assert again is not None and again != first
    assert ven(engine, "ven-house").registration_id == again


def test_status_reports_mark_the_ven_online_with_its_load_control_state(world):
    settings, engine, certs, _ca, meter_name = world

    async def scenario(vtn):
        c = client(settings, "house", certs["house"], settings.tls_ca_file, "ven-house")
        c.add_report(
            callback=lambda: 2.0,  # the level the house's loads run at
            resource_id=meter_name,
            report_name="TELEMETRY_STATUS",
            sampling_rate=timedelta(seconds=1),
            report_duration=timedelta(seconds=60),
        )
        await c.run()
        await until(lambda: ven(engine, "ven-house").status is not None, timeout=15)
        await c.stop()

    run_with_vtn(settings, engine, scenario)
    row = ven(engine, "ven-house")
    assert row.status is not None and row.status["online"] is True
    assert row.status["load_control_state"] == {meter_name: 2.0}
    assert row.status_at is not None
    with Session(engine) as session:  # status values are not usage telemetry
        assert session.exec(select(ReportValue)).all() == []


def test_reports_resume_after_the_vtn_restarts(world):
    """openleadr keeps its report requests in memory: the restarted VTN answers the VEN's next
    report 450, asks it to register again on its next poll, and the reports come back."""
    settings, engine, certs, _ca, meter_name = world

    def values() -> int:
        with Session(engine) as session:
            return len(session.exec(select(ReportValue)).all())

    async def main():
        vtn = Vtn(settings, engine)
        await vtn.start()
        c = client(settings, "house", certs["house"], settings.tls_ca_file, "ven-house")
        c.add_report(
            callback=lambda: 1.0,
            resource_id=meter_name,
            measurement="energy_real",
            unit="Wh",
            sampling_rate=timedelta(seconds=1),
            report_duration=timedelta(seconds=60),
        )
        try:
            await c.run()
            await until(lambda: values() > 0, timeout=15)
            await vtn.stop()
            vtn = Vtn(settings, engine)
            await vtn.start()
            before = values()
            await until(lambda: values() > before, timeout=20)
            return vtn.gate.refused
        finally:
            await c.stop()
            await vtn.stop()

    refused = asyncio.run(main())
    assert refused.get(450, 0) >= 1

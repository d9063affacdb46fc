"""Conformance of the VTN's answers to bad and out-of-order messages: raw XML over HTTPS with a
VEN's client certificate, each answer a schema-valid oadrResponse with the code IEC 62746-10-1
§6.6 gives it, and the VEN's state (registration, queued event) unchanged afterwards."""

from __future__ import annotations

import logging
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from openleadr.messaging import create_message, parse_message, validate_xml_schema
from sqlmodel import Session, select

from backend.health.heartbeats import VTN, heartbeats
from backend.openadr import services
from backend.openadr.gate import ContactLog, check_schema
from backend.openadr.models import EventDelivery, SignalName, Ven
from tests.fixtures.openadr import VenFiles, client, run_with_vtn, until

logging.getLogger("openleadr").setLevel(logging.CRITICAL)


class RawVen:
    """Posts raw bytes to the VTN with a VEN's client certificate; signs when asked."""

    def __init__(self, settings, files: VenFiles) -> None:
        self.url = settings.vtn_url
        self.context = ssl.create_default_context(cafile=str(settings.tls_ca_file))
        self.context.load_cert_chain(files.cert, files.key)
        self.cert, self.key = Path(files.cert).read_bytes(), Path(files.key).read_bytes()

    def message(self, message_type: str, **payload: Any) -> bytes:
        return create_message(message_type, cert=self.cert, key=self.key, **payload).encode()

    async def post(self, service: str, body: bytes) -> tuple[int, str, dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{self.url}/{service}",
                data=body,
                headers={"Content-Type": "application/xml"},
                ssl=self.context,
            ) as response,
        ):
            text = await response.text()
        assert response.status == 200, text
        validate_xml_schema(text.encode())  # every answer is a valid 2.0b message
        message_type, payload = parse_message(text.encode())
        return response.status, message_type, payload


OK = {"response_code": 200, "response_description": "OK", "request_id": "r"}


def code(payload: dict[str, Any]) -> int:
    return int(payload["response"]["response_code"])


def registration(engine) -> str | None:
    with Session(engine) as session:
        ven = session.get(Ven, "ven-house")
        assert ven is not None
        return ven.registration_id


def test_schema_failures_are_answered_454_with_a_valid_oadr_response(world):
    settings, engine, certs, _ca, _meter = world

    async def scenario(vtn):
        raw = RawVen(settings, certs["house"])
        answers = {
            "malformed": await raw.post("OadrPoll", b"<oadrPayload><unclosed>"),
            "wrong namespace": await raw.post(
                "OadrPoll",
                raw.message("oadrPoll", ven_id="ven-house").replace(
                    b"http://openadr.org/oadr-2.0b/2012/07", b"http://example.org/oadr-2.0a"
                ),
            ),
            "schema": await raw.post(
                "EiRegisterParty",
                b'<oadrPayload xmlns="http://openadr.org/oadr-2.0b/2012/07"><x/></oadrPayload>',
            ),
        }
        return answers, vtn.gate.refused, vtn.gate.outgoing_invalid

    answers, refused, outgoing_invalid = run_with_vtn(settings, engine, scenario)
    for name, (_status, message_type, payload) in answers.items():
        assert (message_type, code(payload)) == ("oadrResponse", 454), name
    assert "well-formed" in answers["malformed"][2]["response"]["response_description"]
    assert refused == {454: 3} and outgoing_invalid == 0


def test_unknown_and_unregistered_vens_and_out_of_order_messages(world):
    settings, engine, certs, _ca, _meter = world
    start = datetime.now(UTC) + timedelta(minutes=10)

    async def scenario(vtn):
        raw = RawVen(settings, certs["house"])
        out: dict[str, Any] = {}
        out["unknown ven"] = await raw.post(
            "OadrPoll", raw.message("oadrPoll", ven_id="ven-nobody")
        )
        out["poll before register"] = await raw.post(
            "OadrPoll", raw.message("oadrPoll", ven_id="ven-house")
        )
        out["request event before register"] = await raw.post(
            "EiEvent", raw.message("oadrRequestEvent", ven_id="ven-house", request_id="r1")
        )
        # register properly (openleadr's VEN), then a published event is queued for it
        ven = client(settings, "house", certs["house"], settings.tls_ca_file, "ven-house")
        await ven.create_party_registration(ven_id="ven-house")
        registered = registration(engine)
        with Session(engine) as session:
            event = services.publish_event(
                session,
                signal=SignalName.SIMPLE,
                intervals=[services.Interval(start, 900, 2)],
                ven_ids=["ven-house"],
            )
            session.commit()
            event_id = event.id

        def queued() -> bool:
            with Session(engine) as session:
                d = session.exec(
                    select(EventDelivery).where(EventDelivery.event_id == event_id)
                ).one()
                return d.queued_at is not None

        await until(queued)
        out["created event for unknown event"] = await raw.post(
            "EiEvent",
            raw.message(
                "oadrCreatedEvent",
                ven_id="ven-house",
                response=OK,
                event_responses=[
                    {
                        "response_code": 200,
                        "response_description": "OK",
                        "request_id": "r",
                        "event_id": "not-an-event",
                        "modification_number": 0,
                        "opt_type": "optIn",
                    }
                ],
            ),
        )
        report = {
            "report_request_id": "rr-1",
            "report_specifier_id": "spec",
            "report_name": "TELEMETRY_USAGE",
            "created_date_time": datetime.now(UTC),
            "intervals": [],
        }
        out["report before register report"] = await raw.post(
            "EiReport",
            raw.message("oadrUpdateReport", ven_id="ven-house", request_id="r2", reports=[report]),
        )
        out["created report before register report"] = await raw.post(
            "EiReport",
            raw.message(
                "oadrCreatedReport",
                ven_id="ven-house",
                response=OK,
                pending_reports=[{"report_request_id": "rr-1"}],
            ),
        )
        # the state survived: same registration, and the event still comes with a poll
        out["registration kept"] = registered == registration(engine) is not None
        out["poll after"] = [
            await raw.post("OadrPoll", raw.message("oadrPoll", ven_id="ven-house"))
            for _ in range(2)
        ]
        await ven.client_session.close()
        return out, vtn.gate.outgoing_invalid

    out, outgoing_invalid = run_with_vtn(settings, engine, scenario)
    assert (out["unknown ven"][1], code(out["unknown ven"][2])) == ("oadrResponse", 452)
    assert out["poll before register"][1] == "oadrRequestReregistration"  # Figure 19
    assert code(out["request event before register"][2]) == 463
    assert code(out["created event for unknown event"][2]) == 452
    assert code(out["report before register report"][2]) == 450
    assert code(out["created report before register report"][2]) == 450
    assert out["registration kept"] is True
    # the VEN reported out of sequence: asked to register again (and offer its reports), then
    # the queued event comes
    assert [answer[1] for answer in out["poll after"]] == [
        "oadrRequestReregistration",
        "oadrDistributeEvent",
    ]
    assert outgoing_invalid == 0


def test_another_vens_certificate_is_answered_463(world):
    settings, engine, certs, _ca, _meter = world

    async def scenario(vtn):
        ven = client(settings, "house", certs["house"], settings.tls_ca_file, "ven-house")
        await ven.create_party_registration(ven_id="ven-house")
        await ven.client_session.close()
        impostor = RawVen(settings, certs["headend"])
        return await impostor.post("OadrPoll", impostor.message("oadrPoll", ven_id="ven-house"))

    _status, message_type, payload = run_with_vtn(settings, engine, scenario)
    assert (message_type, code(payload)) == ("oadrResponse", 463)
    assert registration(engine) is not None  # the real VEN keeps its registration


def test_polls_note_last_contact_and_the_vtn_beats(world):
    settings, engine, certs, _ca, _meter = world

    async def scenario(vtn):
        ven = client(settings, "house", certs["house"], settings.tls_ca_file, "ven-house")
        await ven.run()

        def polled() -> bool:
            with Session(engine) as session:
                row = session.get(Ven, "ven-house")
                return row is not None and row.last_poll_at is not None

        await until(polled)
        await ven.stop()

    run_with_vtn(settings, engine, scenario)
    with Session(engine) as session:
        row = session.get(Ven, "ven-house")
        assert row is not None and row.last_contact_at is not None
        assert row.last_poll_at is not None and row.last_contact_at >= row.registered_at
        other = session.get(Ven, "ven-headend")
        assert other is not None and other.last_contact_at is None
        assert VTN in heartbeats(session)


def test_contact_log_keeps_the_last_poll_until_taken():
    log = ContactLog()
    log.touch("a", poll=True)
    log.touch("a", poll=False)
    taken = log.take()
    contact, poll = taken["a"]
    assert poll is not None and contact >= poll
    assert log.take() == {}


def test_check_schema_accepts_a_valid_message():
    assert check_schema(create_message("oadrPoll", ven_id="v").encode()) is not None

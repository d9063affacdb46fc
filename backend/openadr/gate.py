"""The VTN's gate: every OpenADR message passes here before openleadr's service handlers, and
every answer on its way out (an aiohttp middleware on openleadr's app).

In, in this order (IEC 62746-10-1 §6.6 application error codes, answered as an oadrResponse
with HTTP 200, so a VEN always gets a schema-valid 2.0b message back):
- not well-formed XML, or not a 2.0b payload (wrong namespace, schema failure): 454 Invalid
  Data, naming the first schema error;
- a venID the VTN does not know (or revoked): 452 Invalid ID;
- over TLS, a client certificate other than the one registered for that venID: 463;
- a known VEN without a registration: oadrPoll goes on to openleadr, which answers
  oadrRequestReregistration (Figure 19); anything else is 463 Not Registered;
- out of order: oadrCreatedEvent for an eventID the VTN never sent this VEN is 452;
  oadrUpdateReport / oadrCreatedReport before the VTN requested any report from the VEN
  (its oadrRegisterReport) is 450 Out of Sequence, one with an unknown reportRequestID 452;
  after such a 450 the VEN's next oadrPoll is answered oadrRequestReregistration, so a VEN
  that reported to a VTN restarted since offers its reports again.
Registration messages (create/query) go straight on: `services.register` decides.
Refusals change no state; the VEN's registration, queue and reports stay as they were.

Out: each XML answer is validated against the same schema; an invalid one is logged and
counted (`outgoing_invalid`), never silently sent as valid.

The gate also notes each VEN's last contact and last poll (`ContactLog`, written in batches).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web
from lxml import etree
from openleadr import enums, utils
from openleadr.messaging import parse_message, validate_xml_schema
from openleadr.service import vtn_service
from sqlalchemy.engine import Engine
from sqlmodel import Session

from backend.core.utc import utc_now
from backend.openadr import services

logger = logging.getLogger(__name__)

OUT_OF_SEQUENCE = int(enums.STATUS_CODES.OUT_OF_SEQUENCE)  # 450
INVALID_ID = int(enums.STATUS_CODES.INVALID_ID)  # 452
INVALID_DATA = int(enums.STATUS_CODES.INVALID_DATA)  # 454
COMPLIANCE_ERROR = int(enums.STATUS_CODES.COMPLIANCE_ERROR)  # 459
NOT_REGISTERED = int(enums.STATUS_CODES.NOT_REGISTERED_OR_AUTHORIZED)  # 463

REGISTRATION = ("oadrCreatePartyRegistration", "oadrQueryRegistration")
WELL_FORMED = etree.XMLParser(resolve_entities=False, no_network=True)

VenInfo = dict[str, str | None]
Lookup = Callable[[str], Awaitable[VenInfo | None]]
MessageFactory = Callable[..., str]

# the gate's look-up of the message's VEN, reused by openleadr's own look-up in that request
LOOKED_UP: contextvars.ContextVar[tuple[str, VenInfo | None] | None] = contextvars.ContextVar(
    "openadr_looked_up", default=None
)


# the message the gate parsed, for openleadr's handler in the same request (`share_parsing`)
PARSED: contextvars.ContextVar[tuple[bytes, Any, tuple[str, dict[str, Any]]] | None] = (
    contextvars.ContextVar("openadr_parsed", default=None)
)


def share_parsing() -> None:
    """openleadr's handler validates and parses the body the gate has just validated and
    parsed (the same bytes object: aiohttp caches the body). Point the names its module uses
    at versions that reuse the gate's results for that object and do the work otherwise."""

    def validate(content: Any) -> Any:
        parsed = PARSED.get()
        if parsed is not None and parsed[0] is content:
            return parsed[1]
        return validate_xml_schema(content)

    def parse(content: Any) -> tuple[str, dict[str, Any]]:
        parsed = PARSED.get()
        if parsed is not None and parsed[0] is content:
            message_type, payload = parsed[2]
            return message_type, dict(payload)
        return parse_message(content)

    vtn_service.validate_xml_schema = validate
    vtn_service.parse_message = parse


class Refusal(Exception):
    """A message answered with an oadrResponse carrying `code` instead of being handled."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code, self.description = code, description


class Reregister(Exception):
    """Answer the message with oadrRequestReregistration."""

    def __init__(self, ven_id: str) -> None:
        super().__init__(ven_id)
        self.ven_id = ven_id


class ContactLog:
    """Last contact and last poll per VEN, in memory; `take()` hands them over for one batched
    write (a poll every 10 s from 1,000 VENs would otherwise be 100 updates a second)."""

    def __init__(self) -> None:
        self.pending: dict[str, tuple[datetime, datetime | None]] = {}

    def touch(self, ven_id: str, *, poll: bool) -> None:
        now = utc_now()
        _, last_poll = self.pending.get(ven_id, (now, None))
        self.pending[ven_id] = (now, now if poll else last_poll)

    def take(self) -> dict[str, tuple[datetime, datetime | None]]:
        taken, self.pending = self.pending, {}
        return taken


def check_schema(content: bytes) -> Any:
    """The parsed tree of a well-formed, 2.0b-valid message, else `Refusal(454)` saying
    which of the two it is not."""
    try:
        return validate_xml_schema(content)
    except etree.XMLSyntaxError as exc:
        try:
            etree.fromstring(content, WELL_FORMED)
        except etree.XMLSyntaxError as syntax:
            raise Refusal(INVALID_DATA, f"not well-formed XML: {syntax}") from syntax
        raise Refusal(INVALID_DATA, f"not a valid OpenADR 2.0b message: {exc}") from exc


def xml_text(text: str) -> str:
    """Text for a template slot: openleadr's templates do not escape (an error naming `<x>`
    would otherwise inject markup), and descriptions stay short."""
    return escape(text[:240])


def error_message(
    create_message: MessageFactory, code: int, description: str, *, ven_id: str, request_id: Any
) -> str:
    return create_message(
        "oadrResponse",
        response={
            "response_code": code,
            "response_description": xml_text(description),
            "request_id": request_id,
        },
        ven_id=ven_id,
    )


class Gate:
    """The checks above, given how to look a VEN up (`lookup`), the database (deliveries), the
    report requests openleadr made per VEN (`requested_reports`) and how to write a message."""

    def __init__(
        self,
        *,
        lookup: Lookup,
        engine: Engine,
        requested_reports: dict[str, list[Any]],
        create_message: MessageFactory,
        contacts: ContactLog,
    ) -> None:
        self.lookup, self.engine = lookup, engine
        self.requested_reports = requested_reports
        self.create_message = create_message
        self.contacts = contacts
        self.outgoing_invalid = 0
        # VENs that reported before the VTN requested reports (e.g. after a VTN restart: the
        # requests live in openleadr's memory): their next poll asks them to register again,
        # which makes an openleadr VEN offer its reports again (Figure 19)
        self.reregister: set[str] = set()
        self.refused: dict[int, int] = {}  # response code -> count

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.method != "POST" or not request.content_type.startswith("application/xml"):
            return await handler(request)  # openleadr answers 400 to a wrong content type
        content = await request.read()  # cached: openleadr's handler reads it again
        LOOKED_UP.set(None)  # a kept-alive connection serves its requests in one task
        PARSED.set(None)
        ven_id, request_id = "", None
        try:
            tree = check_schema(content)
            message_type, payload = parse_message(content)
            PARSED.set((content, tree, (message_type, dict(payload))))
            ven_id = payload.get("ven_id") or ""
            request_id = payload.get("request_id")
            await self.admit(request, message_type, payload)
        except Refusal as refusal:
            self.refused[refusal.code] = self.refused.get(refusal.code, 0) + 1
            logger.info("VTN refused a message (%s): %s", refusal.code, refusal.description)
            text = error_message(
                self.create_message,
                refusal.code,
                refusal.description,
                ven_id=ven_id,
                request_id=request_id,
            )
            return self.checked(web.Response(text=text, content_type="application/xml"))
        except Reregister as ask:
            text = self.create_message("oadrRequestReregistration", ven_id=ask.ven_id)
            return self.checked(web.Response(text=text, content_type="application/xml"))
        return self.checked(await handler(request))

    async def admit(self, request: web.Request, message_type: str, payload: dict[str, Any]) -> None:
        """Raise `Refusal` unless the message may reach openleadr's handlers."""
        ven_id = payload.get("ven_id")
        if message_type in REGISTRATION or not ven_id:
            return
        info = await self.lookup(ven_id)
        LOOKED_UP.set((ven_id, info))
        if info is None:
            raise Refusal(INVALID_ID, f"venID {ven_id} is not known to this VTN")
        if request.secure:
            presented = utils.get_cert_fingerprint_from_request(request)
            if presented != info.get("fingerprint"):
                raise Refusal(
                    NOT_REGISTERED, f"the client certificate is not the one of venID {ven_id}"
                )
        if info.get("registration_id") is None:
            if message_type in ("oadrPoll", "oadrCancelPartyRegistration"):
                return  # openleadr asks the VEN to register again
            raise Refusal(NOT_REGISTERED, f"venID {ven_id} must register first")
        self.contacts.touch(ven_id, poll=message_type == "oadrPoll")
        if message_type == "oadrPoll" and ven_id in self.reregister:
            self.reregister.discard(ven_id)
            raise Reregister(ven_id)
        if message_type == "oadrCreatedEvent":
            await self.check_event_ids(ven_id, payload)
        elif message_type in ("oadrUpdateReport", "oadrCreatedReport"):
            self.check_report_ids(ven_id, message_type, payload)

    async def check_event_ids(self, ven_id: str, payload: dict[str, Any]) -> None:
        event_ids = [r.get("event_id") for r in payload.get("event_responses") or []]

        def unknown() -> list[str]:
            with Session(self.engine) as session:
                return [
                    str(e)
                    for e in event_ids
                    if not services.is_delivery_of(session, ven_id=ven_id, delivery_id=str(e))
                ]

        missing = await asyncio.to_thread(unknown)
        if missing:
            raise Refusal(INVALID_ID, f"eventID {missing[0]} was never sent to venID {ven_id}")

    def check_report_ids(self, ven_id: str, message_type: str, payload: dict[str, Any]) -> None:
        requested = self.requested_reports.get(ven_id)
        if not requested:
            self.reregister.add(ven_id)
            raise Refusal(
                OUT_OF_SEQUENCE, f"{message_type} before the VTN requested any report (register)"
            )
        known = {utils.getmember(r, "report_request_id") for r in requested}
        if message_type == "oadrUpdateReport":
            ids = [r.get("report_request_id") for r in payload.get("reports") or []]
        else:
            ids = [r.get("report_request_id") for r in payload.get("pending_reports") or []]
        stray = [i for i in ids if i not in known]
        if stray:
            raise Refusal(INVALID_ID, f"reportRequestID {stray[0]} was not requested")

    def checked(self, response: web.StreamResponse) -> web.StreamResponse:
        """Validate an outgoing XML answer against the 2.0b schema."""
        if not isinstance(response, web.Response) or response.content_type != "application/xml":
            return response
        body = response.body
        if isinstance(body, bytes | bytearray) and body.strip():
            try:
                validate_xml_schema(bytes(body))
            except etree.XMLSyntaxError as exc:
                self.outgoing_invalid += 1
                logger.error("VTN answer fails the 2.0b schema: %s", exc)
        return response

"""EiOpt over simple HTTP (`<vtn>/EiOpt`), which openleadr's VTN lacks: oadrCreateOpt ->
oadrCreatedOpt, oadrCancelOpt -> oadrCanceledOpt (IEC 62746-10-1 §6.4).

The gate (gate.py) has already checked the schema, the venID, its certificate and its
registration; here the message's XML signature is verified as openleadr does for its own
services, then `opts` records the schedule. An oadrCreateOpt naming an event
(qualifiedEventID) is that VEN's opt for that event, like an oadrCreatedEvent answer. Errors
are answered in the oadrCreatedOpt / oadrCanceledOpt itself (452 unknown optID or eventID,
454 a schedule without usable windows), other message types with 459.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from openleadr import errors
from openleadr.messaging import authenticate_message, parse_message, validate_xml_schema
from sqlalchemy.engine import Engine
from sqlmodel import Session

from backend.openadr import opts, services
from backend.openadr.errors import OptInvalid, OptNotFound
from backend.openadr.gate import (
    COMPLIANCE_ERROR,
    INVALID_DATA,
    INVALID_ID,
    Lookup,
    MessageFactory,
    error_message,
    xml_text,
)

logger = logging.getLogger(__name__)

OK = 200


def windows_of(payload: dict[str, Any]) -> list[opts.Window]:
    """openleadr parses one `available` as a dict of its properties, several as a list of
    dicts holding `properties`."""
    components = (payload.get("vavailability") or {}).get("components") or {}
    available = components.get("available") if isinstance(components, dict) else components
    if isinstance(available, dict):
        available = [available]
    out: list[opts.Window] = []
    for entry in available or []:
        item = entry.get("properties", entry)
        start, duration = item.get("dtstart"), item.get("duration")
        if isinstance(start, datetime) and isinstance(duration, timedelta):
            out.append(opts.Window(start, int(duration.total_seconds())))
    return out


class EiOptEndpoint:
    def __init__(
        self, *, engine: Engine, lookup: Lookup, create_message: MessageFactory, verify: bool
    ) -> None:
        self.engine, self.lookup, self.create_message = engine, lookup, create_message
        self.verify = verify

    async def handle(self, request: web.Request) -> web.Response:
        content = await request.read()
        tree = validate_xml_schema(content)  # the gate refused invalid messages already
        message_type, payload = parse_message(content)
        ven_id = payload.get("ven_id") or ""
        try:
            await authenticate_message(
                request,
                tree,
                payload,
                ven_lookup=self.lookup,
                verify_message_signature=self.verify,
            )
        except (errors.ProtocolError, errors.FingerprintMismatch, ValueError) as exc:
            return self.reply(
                error_message(
                    self.create_message,
                    463,
                    str(exc) or "not authorized",
                    ven_id=ven_id,
                    request_id=payload.get("request_id"),
                )
            )
        if message_type == "oadrCreateOpt":
            code, description = await asyncio.to_thread(self.create, ven_id, payload)
            answer = "oadrCreatedOpt"
        elif message_type == "oadrCancelOpt":
            code, description = await asyncio.to_thread(self.cancel, ven_id, payload)
            answer = "oadrCanceledOpt"
        else:
            return self.reply(
                error_message(
                    self.create_message,
                    COMPLIANCE_ERROR,
                    f"{message_type} is not an EiOpt message",
                    ven_id=ven_id,
                    request_id=payload.get("request_id"),
                )
            )
        return self.reply(
            self.create_message(
                answer,
                response={
                    "response_code": code,
                    "response_description": xml_text(description),
                    "request_id": payload.get("request_id") or "",
                },
                opt_id=payload.get("opt_id"),
                ven_id=ven_id,
            )
        )

    @staticmethod
    def reply(text: str) -> web.Response:
        return web.Response(text=text, content_type="application/xml")

    def create(self, ven_id: str, payload: dict[str, Any]) -> tuple[int, str]:
        opt_id, opt_type = str(payload.get("opt_id")), str(payload.get("opt_type"))
        with Session(self.engine) as session:
            event_id = payload.get("event_id")
            if event_id is not None:
                if not services.is_delivery_of(session, ven_id=ven_id, delivery_id=event_id):
                    return INVALID_ID, f"eventID {event_id} was never sent to venID {ven_id}"
                services.record_opt(session, ven_id=ven_id, delivery_id=event_id, opt_type=opt_type)
                session.commit()
                return OK, "OK"
            try:
                opts.create_schedule(
                    session,
                    ven_id=ven_id,
                    opt_id=opt_id,
                    opt_type=opt_type,
                    opt_reason=str(payload.get("opt_reason")),
                    windows=windows_of(payload),
                    market_context=payload.get("market_context"),
                )
            except OptInvalid as exc:
                return INVALID_DATA, str(exc)
            session.commit()
        return OK, "OK"

    def cancel(self, ven_id: str, payload: dict[str, Any]) -> tuple[int, str]:
        with Session(self.engine) as session:
            try:
                opts.cancel_schedule(session, ven_id=ven_id, opt_id=str(payload.get("opt_id")))
            except OptNotFound as exc:
                return INVALID_ID, str(exc)
            session.commit()
        return OK, "OK"

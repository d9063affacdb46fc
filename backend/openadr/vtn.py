"""The VTN: openleadr's `OpenADRServer` wired to our VEN registry and stores.

What openleadr does: the simple-HTTP endpoints, 2.0b schema validation of every message,
per-VEN event queues served on oadrPoll, XML signature checks. What we add: only known VENs
register (`services.register`), each message's client certificate must be the one registered
for its venID (`ven_lookup`), events published in the database reach the queues
(`dispatch_pending`), opt answers and report values are stored.

TLS: with GRIDLEDGER_TLS on, the VTN serves the API's certificate and requires a client
certificate issued by GRIDLEDGER_TLS_CA_FILE (openleadr's `http_ca_file`, CERT_REQUIRED), and
VENs sign their messages with it; TLS 1.3 at least, as the API. With TLS off it speaks plain
HTTP and cannot tell VENs apart by certificate (development only).

Database work runs in threads (`asyncio.to_thread`), one short session per call; openleadr's
event queues live in memory, so on start unanswered deliveries are queued again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from openleadr import OpenADRServer
from openleadr.service import VTNService
from openleadr.utils import getmember
from sqlalchemy.engine import Engine
from sqlmodel import Session

from backend.core.config import Settings
from backend.core.errors import ConfigurationError
from backend.core.tls import MINIMUM_VERSION
from backend.core.tls import prepare as prepare_tls
from backend.health.heartbeats import VTN, Heartbeat
from backend.openadr import opts, registry, replay, services
from backend.openadr.ei_opt import EiOptEndpoint
from backend.openadr.gate import LOOKED_UP, ContactLog, Gate, share_parsing
from backend.openadr.known import KnownVens

logger = logging.getLogger(__name__)

PATH_PREFIX = "/OpenADR2/Simple/2.0b"  # openleadr's default http_path_prefix

ReportCallback = Callable[[list[tuple[datetime, float]]], Awaitable[None]]


class Vtn:
    """One VTN process: the openleadr server, the engine it records through, the dispatcher."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        tls: dict[str, Any] = {}
        if settings.tls_enabled:
            prepare_tls(settings)  # the development CA's files on a first run
            if not settings.tls_ca_file.name:
                raise ConfigurationError(
                    "the VTN checks VEN client certificates: set GRIDLEDGER_TLS_CA_FILE"
                )
            tls = {
                "http_cert": str(settings.tls_cert_file),
                "http_key": str(settings.tls_key_file),
                "http_ca_file": str(settings.tls_ca_file),
            }
        self.server = OpenADRServer(
            vtn_id=settings.vtn_id,
            http_host=settings.vtn_host,
            http_port=settings.vtn_port,
            requested_poll_freq=timedelta(seconds=settings.vtn_poll_interval_s),
            ven_lookup=self._ven_lookup,
            show_fingerprint=False,
            **tls,
        )
        if self.server.ssl_context is not None:
            self.server.ssl_context.minimum_version = MINIMUM_VERSION
        self.server.add_handler("on_create_party_registration", self._on_create_party_registration)
        self.server.add_handler("on_cancel_party_registration", self._on_cancel_party_registration)
        self.server.add_handler("on_register_report", self.on_register_report)
        self.contacts = ContactLog()
        self.gate = Gate(
            lookup=self._ven_lookup,
            engine=engine,
            requested_reports=self.server.services["report_service"].requested_reports,
            create_message=VTNService._create_message,
            contacts=self.contacts,
        )
        self.server.app.middlewares.append(self.gate.middleware)
        self.ei_opt = EiOptEndpoint(
            engine=engine,
            lookup=self._ven_lookup,
            create_message=VTNService._create_message,
            verify=VTNService.verify_message_signatures,
        )
        self.server.app.add_routes([web.post(f"{PATH_PREFIX}/EiOpt", self.ei_opt.handle)])
        self.heartbeat = Heartbeat(engine, VTN, settings.heartbeat_interval_s)
        self.known = KnownVens(engine)
        self._next_refresh = 0.0
        replay.install()
        share_parsing()
        self._dispatcher: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return self.settings.vtn_url

    async def start(self) -> None:
        with Session(self.engine) as session:
            services.requeue_unanswered(session, now=datetime.now(UTC))
            session.commit()
        await self.server.run()
        self._dispatcher = asyncio.create_task(self._dispatch_forever())

    async def stop(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, return_exceptions=True)
        await self.server.stop()

    # --- EiRegisterParty -------------------------------------------------------------------

    def ven_lookup(self, ven_id: str | None) -> dict[str, str | None] | None:
        """What openleadr checks each message against: the registered certificate's
        fingerprint, and whether the VEN holds a registration (else it asks to re-register).
        From the in-memory view (`known.py`), the database for a VEN not in it yet."""
        if not ven_id:
            return None
        return self.known.get(ven_id)

    # openleadr awaits coroutines; the gate's look-up serves the rest of its request, and a VEN
    # missing from the view is looked up in a thread, so one slow query holds no other poll
    async def _ven_lookup(self, ven_id: str | None) -> dict[str, str | None] | None:
        cached = LOOKED_UP.get()
        if cached is not None and ven_id and cached[0] == ven_id:
            return cached[1]
        if ven_id and ven_id in self.known.view:
            return self.known.view[ven_id]
        return await asyncio.to_thread(self.ven_lookup, ven_id)

    async def _on_create_party_registration(
        self, payload: dict[str, Any]
    ) -> tuple[str, str] | bool:
        return await asyncio.to_thread(self.on_create_party_registration, payload)

    async def _on_cancel_party_registration(
        self, payload: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        return await asyncio.to_thread(self.on_cancel_party_registration, payload)

    def on_create_party_registration(self, payload: dict[str, Any]) -> tuple[str, str] | bool:
        with Session(self.engine) as session:
            ven = services.register(
                session,
                ven_id=payload.get("ven_id"),
                ven_name=payload.get("ven_name") or "",
                connection_fingerprint=payload.get("fingerprint"),
            )
            if ven is None or ven.registration_id is None:
                logger.warning("VTN refused registration of %r", payload.get("ven_name"))
                return False
            session.commit()
            self.known.changed(ven)
            return ven.ven_id, ven.registration_id

    def on_cancel_party_registration(self, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        ven_id = payload["ven_id"]
        with Session(self.engine) as session:
            services.cancel_registration(session, ven_id=ven_id)
            session.commit()
            self.known.changed(services.find_ven(session, ven_id=ven_id))
        return "oadrCanceledPartyRegistration", {
            "ven_id": ven_id,
            "registration_id": payload.get("registration_id"),
        }

    # --- EiEvent ---------------------------------------------------------------------------

    def dispatch_pending(self) -> int:
        """Queue every published, not yet queued delivery for its VEN; the number queued."""
        queued = 0
        with Session(self.engine) as session:
            for delivery, event in services.pending_deliveries(session):
                opts.apply_schedule(session, delivery=delivery, event=event)
                intervals = [
                    {
                        "dtstart": datetime.fromtimestamp(int(i["start"]), UTC),
                        "duration": timedelta(seconds=int(i["duration_s"])),
                        "signal_payload": i["value"],
                    }
                    for i in event.intervals
                ]
                self.server.add_event(
                    ven_id=delivery.ven_id,
                    signal_name=event.signal_name,
                    signal_type=event.signal_type,
                    intervals=intervals,
                    event_id=delivery.id,
                    market_context=event.market_context,
                    callback=self._on_opt,
                )
                services.mark_queued(session, delivery.id)
                queued += 1
            session.commit()
        return queued

    def housekeeping(self) -> None:
        """Write the contacts the gate noted since the last round, reload the VENs now and
        then, and beat."""
        if time.monotonic() >= self._next_refresh:
            self.known.refresh()
            self._next_refresh = time.monotonic() + self.settings.vtn_registry_refresh_s
        contacts = self.contacts.take()
        if contacts:
            with Session(self.engine) as session:
                registry.record_contacts(session, contacts)
                session.commit()
        self.heartbeat.beat()

    async def _dispatch_forever(self) -> None:
        while True:
            try:
                self.dispatch_pending()  # openleadr's queues: on the loop's thread
                await asyncio.to_thread(self.housekeeping)
            except Exception:  # the next round retries; the VTN keeps serving
                logger.exception("VTN: dispatching events failed")
            await asyncio.sleep(self.settings.vtn_dispatch_interval_s)

    async def _on_opt(self, ven_id: str, event_id: str, opt_type: str) -> None:
        """openleadr drops an event's callback after the first answer: put it back while the
        event is queued, so a later change of mind (optIn, then optOut) is recorded too."""
        await asyncio.to_thread(self.on_opt, ven_id, event_id, opt_type)
        for event in self.server.events.get(ven_id, []):
            if getmember(event, "event_descriptor.event_id") == event_id:
                self.server.event_callbacks[event_id] = (event, self._on_opt)

    def on_opt(self, ven_id: str, event_id: str, opt_type: str) -> None:
        with Session(self.engine) as session:
            if services.record_opt(session, ven_id=ven_id, delivery_id=event_id, opt_type=opt_type):
                session.commit()
            else:
                logger.warning(
                    "VTN: %s answered %s to unknown event %s", ven_id, opt_type, event_id
                )

    # --- EiReport --------------------------------------------------------------------------

    def on_register_report(
        self,
        ven_id: str,
        resource_id: str,
        measurement: str,
        unit: str | None,
        scale: str | None,
        min_sampling_interval: timedelta,
        max_sampling_interval: timedelta,
    ) -> tuple[ReportCallback, timedelta] | None:
        """Request every telemetry usage and status report a known VEN offers, at its fastest
        rate; usage values land in the report store, status on the VEN (`registry`)."""
        if measurement == "Status":

            async def status(values: list[tuple[datetime, float]]) -> None:
                await asyncio.to_thread(write_status, values)

            def write_status(values: list[tuple[datetime, float]]) -> None:
                with Session(self.engine) as session:
                    registry.record_status(
                        session, ven_id=ven_id, resource_id=resource_id, values=values
                    )
                    session.commit()

            return status, min_sampling_interval

        async def store(values: list[tuple[datetime, float]]) -> None:
            await asyncio.to_thread(write, values)

        def write(values: list[tuple[datetime, float]]) -> None:
            with Session(self.engine) as session:
                services.record_report_values(
                    session,
                    ven_id=ven_id,
                    resource_id=resource_id,
                    measurement=measurement,
                    unit=unit,
                    scale=scale,
                    values=values,
                    settings=self.settings,
                )
                session.commit()

        return store, min_sampling_interval

"""`python -m backend.vpp.dispatcher`: the downlink process (supervised by `make run`).

Each round (every `vpp_dispatch_poll_s`): apply the acknowledgements received since the last
round, publish the pending commands at QoS 1 (a command is `sent` once the broker's PUBACK
came; one the broker did not take stays pending for the next round, failing after
`vpp_publish_attempts`), and mark late the sent commands whose deadline passed — one
transaction per round. An acknowledgement without a valid command id, or naming no command sent
to that device, becomes a dead letter (source `dispatcher`, backend/deadletters).
Acknowledgements arrive on `{root}/+/+/+/status` (backend/vpp/downlink.py has the shapes) over
a persistent MQTT 5 session, so acknowledgements sent while the dispatcher was down are
delivered when it is back. It writes the `dispatcher` heartbeat /health watches.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from backend.chain import clock
from backend.core.config import Settings, get_settings
from backend.core.db import make_engine
from backend.core.errors import ServiceUnavailable
from backend.core.startup import settings_or_exit
from backend.core.tls import service_mqtt_client
from backend.deadletters import services as dead_letters
from backend.health.heartbeats import DISPATCHER, Heartbeat
from backend.vpp import downlink
from backend.vpp.errors import MalformedAck

log = logging.getLogger("gridledger.dispatcher")
PUBACK_WAIT_S = 5.0
DEAD_LETTER_SOURCE = "dispatcher"


@dataclass
class Dispatcher:
    settings: Settings = field(default_factory=get_settings)
    client_id: str = ""
    now: Callable[[], datetime] | None = None  # None: the configured clock (chain under make run)
    acks: list[downlink.Ack] = field(default_factory=list)  # received, not yet applied
    poison: list[tuple[str, bytes, str]] = field(default_factory=list)  # topic, payload, reason
    totals: dict[str, int] = field(
        default_factory=lambda: {
            "sent": 0,
            "acked": 0,
            "late": 0,
            "unpublished": 0,
            "dead_letters": 0,
        }
    )

    def __post_init__(self) -> None:
        self.engine = make_engine(self.settings.database_url)
        self.clock_now: Callable[[], datetime] = self.now or (lambda: clock.utc_now(self.settings))
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.subscribed = threading.Event()
        client_id = self.client_id or self.settings.vpp_dispatch_client_id
        client = service_mqtt_client(self.settings, client_id)
        acks = f"{self.settings.mqtt_topic_root}/+/+/+/status"
        client.on_connect = lambda c, *_: c.subscribe(acks, options=mqtt.SubscribeOptions(qos=1))
        client.on_subscribe = lambda *args: self.subscribed.set()
        client.on_message = self.on_message
        self.client = client

    def on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            ack = downlink.ack_from_message(
                message.topic, message.payload, self.settings.mqtt_topic_root
            )
        except MalformedAck as exc:
            with self.lock:
                self.poison.append((message.topic, bytes(message.payload), exc.detail))
            return
        if ack is not None:
            try:
                received_at: datetime | None = self.clock_now()
            except ServiceUnavailable:  # the chain's clock is unreachable: stamped when applied
                received_at = None
            with self.lock:
                self.acks.append(replace(ack, received_at=received_at))

    def round(self) -> None:
        """One round (see the module docstring), in one transaction, at one clock reading."""
        moment = self.clock_now()  # before anything is taken: a clock failure loses nothing
        with self.lock:
            acks, self.acks = self.acks, []
            poison, self.poison = self.poison, []
        try:
            with Session(self.engine) as session:
                for ack in acks:
                    if downlink.record_ack(session, ack, moment) is not None:
                        self.totals["acked"] += 1
                        continue
                    reason = f"acknowledges {ack.command_id}, no command of {ack.resource_id}"
                    poison.append((ack.topic, ack.payload, reason))
                for topic, payload, reason in poison:
                    log.warning("bad acknowledgement on %s: %s", topic, reason)
                    dead_letters.record(
                        session.connection(),
                        source=DEAD_LETTER_SOURCE,
                        topic=topic,
                        payload=payload,
                        reason=reason,
                        max_bytes=self.settings.dead_letter_max_bytes,
                    )
                    self.totals["dead_letters"] += 1
                session.flush()
                self.publish(session, moment)
                self.totals["late"] += downlink.mark_late(session, moment)
                session.commit()
        except OperationalError:
            with self.lock:
                self.acks[:0] = acks  # applied next round, once the database is back
                self.poison[:0] = poison
            raise

    def publish(self, session: Session, published_at: datetime) -> None:
        """Publish the pending commands; `published_at` precedes any answer (the
        acknowledgement deadline counts from it)."""
        commands = downlink.pending(session)
        infos = [(c, self.client.publish(c.topic, downlink.encode(c), qos=1)) for c in commands]
        for command, info in infos:
            try:
                info.wait_for_publish(PUBACK_WAIT_S)
            except (RuntimeError, ValueError) as exc:  # not connected, or the queue is full
                reason = str(exc) or type(exc).__name__
            else:
                reason = "" if info.is_published() else "no PUBACK"
            if reason:
                downlink.mark_unpublished(command, self.settings, reason)
                self.totals["unpublished"] += 1
            else:
                downlink.mark_sent(command, self.settings, published_at)
                self.totals["sent"] += 1
            session.add(command)

    def start(self) -> None:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 86_400
        self.client.connect(
            self.settings.mqtt_host,
            self.settings.mqtt_broker_port,
            keepalive=30,
            clean_start=False,
            properties=properties,
        )
        self.client.loop_start()

    def run(self) -> None:
        self.start()
        heartbeat = Heartbeat(self.engine, DISPATCHER, self.settings.heartbeat_interval_s)
        try:
            while not self.stopped.is_set():
                if self.client.is_connected():
                    heartbeat.beat()
                    try:
                        self.round()
                    except OperationalError as exc:
                        log.warning("database unavailable (%s); retrying", exc)
                    except ServiceUnavailable as exc:  # clock=chain and the chain is down
                        log.warning("%s; retrying", exc.detail)
                self.stopped.wait(self.settings.vpp_dispatch_poll_s)
        finally:
            self.client.loop_stop()
            self.client.disconnect()
            self.engine.dispose()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = settings_or_exit("dispatcher")
    dispatcher = Dispatcher(settings=settings)
    signal.signal(signal.SIGTERM, lambda *_: dispatcher.stopped.set())
    try:
        dispatcher.run()
    except KeyboardInterrupt:
        dispatcher.stopped.set()
    sys.exit(0)


if __name__ == "__main__":
    main()

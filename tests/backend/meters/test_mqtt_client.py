"""The subscriber's paho client (backend/meters/mqtt_client.py) on the machine's Mosquitto:
buffered reads and raw PUBLISH hand-over lose nothing and cut nothing, batched PUBACKs settle
the session. These pin the paho internals it relies on (paho is pinned in pyproject.toml)."""

from __future__ import annotations

import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from backend.meters.mqtt_client import READ_SIZE, BufferedClient
from tests.fixtures.mqtt import BROKER, forget_session, wait_until

pytestmark = pytest.mark.mqtt


class Collector:
    """A BufferedClient with a persistent session, collecting what `on_raw_message` gets."""

    def __init__(self, client_id: str, topic: str) -> None:
        self.received: list[tuple[int, int, bytes, bytes]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        client = BufferedClient(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        client.on_raw_message = self.on_raw
        client.on_connect = lambda c, *_: c.subscribe(topic, options=mqtt.SubscribeOptions(qos=1))
        client.on_subscribe = lambda *_: self.subscribed.set()
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 300
        properties.ReceiveMaximum = 65_535
        client.connect(*BROKER, clean_start=False, properties=properties)
        client.loop_start()
        assert self.subscribed.wait(10), "subscription not acknowledged"
        self.client = client

    def on_raw(self, mid: int, qos: int, topic: bytes, payload: bytes | bytearray) -> None:
        with self.lock:
            self.received.append((mid, qos, topic, bytes(payload)))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_every_message_arrives_whole_and_acknowledged_ones_do_not_come_back():
    """300 small messages, one larger than the read buffer and one carrying MQTT 5 properties,
    published at QoS 1 in one burst: each arrives once, in order, with its packet id, topic and
    exact payload (properties skipped). Acknowledged with one `ack_all`, nothing of them is
    redelivered to the same persistent session; the unacknowledged last one is."""
    topic = f"i16mqtt-{uuid.uuid4().hex[:8]}/client"
    client_id = f"i16mqtt-client-{uuid.uuid4().hex[:8]}"
    payloads = [f'{{"n": {k}}}'.encode() for k in range(300)]
    payloads.insert(150, bytes(range(256)) * (3 * READ_SIZE // 256 + 7))  # spans 4 reads
    collector = Collector(client_id, topic)
    publisher = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"i16mqtt-pub-{uuid.uuid4().hex[:8]}"
    )
    publisher.connect(*BROKER)
    publisher.loop_start()
    try:
        for info in [publisher.publish(topic, p, qos=1) for p in payloads]:
            info.wait_for_publish(10)  # before the other publisher's message: one order
        with_properties = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"i16mqtt-pub5-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        with_properties.connect(*BROKER)
        with_properties.loop_start()
        properties = Properties(PacketTypes.PUBLISH)
        properties.ContentType = "application/json"
        properties.UserProperty = [("gateway", "i16mqtt" * 40)]
        with_properties.publish(
            topic, b'{"last": true}', qos=1, properties=properties
        ).wait_for_publish(10)
        with_properties.disconnect()
        with_properties.loop_stop()
        assert wait_until(lambda: len(collector.received) == len(payloads) + 1, 30)
        received = list(collector.received)
        assert [payload for *_, payload in received] == [*payloads, b'{"last": true}']
        assert {(qos, name) for _, qos, name, _ in received} == {(1, topic.encode())}
        assert len({mid for mid, *_ in received}) == len(received)
        collector.client.ack_all(mid for mid, *_ in received[:-1])
        time.sleep(0.5)  # the PUBACKs on their way before the session is left
        collector.close()

        again = Collector(client_id, topic)  # the same session: only the unacknowledged one
        assert wait_until(lambda: len(again.received) >= 1, 10)
        time.sleep(0.5)
        assert [payload for *_, payload in again.received] == [b'{"last": true}']
        again.client.ack_all([again.received[0][0]])
        time.sleep(0.2)
        again.close()
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        forget_session(client_id)

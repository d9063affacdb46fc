"""bench/_mqtt.py on the machine's Mosquitto: a run's persistent sessions are ended afterwards,
so that none stays on the broker, subscribed, into the next run."""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench._mqtt import BROKER, end_session

pytestmark = pytest.mark.mqtt


def session_present(client_id: str, subscribe: str | None = None) -> bool:
    """Connect as the subscriber does (no clean start, a session kept an hour): whether the
    broker still had a session of `client_id`; subscribe to `subscribe` if given."""
    found: list[bool] = []
    done = threading.Event()

    def on_connect(client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        found.append(flags.session_present)
        if subscribe:
            client.subscribe(subscribe, qos=1)
        else:
            done.set()

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    client.on_connect = on_connect
    client.on_subscribe = lambda *_: done.set()
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 3_600
    client.connect(BROKER[0], int(BROKER[1]), clean_start=False, properties=properties)
    client.loop_start()
    try:
        assert done.wait(10), "no CONNACK/SUBACK from Mosquitto"
    finally:
        client.disconnect()
        client.loop_stop()
    return found[0]


def test_a_runs_persistent_session_is_ended_afterwards():
    client_id = f"i16-mqtt-bench-{uuid.uuid4().hex[:10]}"
    try:
        assert not session_present(client_id, subscribe=f"$share/{client_id}/i16-mqtt-x/#")
        assert session_present(client_id)  # kept, with its subscription, after the disconnect
        end_session(client_id)
        assert not session_present(client_id)
    finally:
        end_session(client_id)

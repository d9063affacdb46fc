"""The ingestion subscriber's paho client: fewer system calls per message.

paho 2.2 reads a packet with three or more `recv` calls (command byte, length bytes, the rest),
each packet after a `select`, and sends each PUBACK with a `send` of its own after waking its
network thread through a socket pair: about six system calls per QoS 1 message, most of the
subscriber's network thread at tens of thousands of messages per second; and it decodes the
MQTT 5 properties of every PUBLISH into objects and matches its topic against per-topic
callbacks before `on_message` sees it. `BufferedClient` reads the socket 64 KiB at a time and
serves paho's reads from that buffer (every buffered packet is handled before `select` waits
again), hands each QoS 0/1 PUBLISH to `on_raw_message` as (packet id, QoS, topic bytes,
payload) without building an MQTTMessage, and queues the PUBACKs of a committed batch as one
write (`ack_all`). It relies on paho internals (`_sock_recv`, `loop_read`, `_handle_publish`,
`_in_packet`, `_packet_queue`): paho is pinned in pyproject.toml and
tests/backend/meters/test_mqtt_client.py checks them against a real broker.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Iterable

import paho.mqtt.client as mqtt

READ_SIZE = 65_536
PUBACK = 0x40  # MQTT control packet type 4
_PUBACK = struct.Struct("!BBH")  # PUBACK, remaining length 2 (reason: success), packet id


# (packet id, QoS, topic as sent, payload) of a received PUBLISH
RawHandler = Callable[[int, int, bytes, bytes | bytearray], None]


class BufferedClient(mqtt.Client):
    """A paho client reading its socket in READ_SIZE chunks; with `on_raw_message` set, QoS 0
    and 1 messages go there instead of to `on_message` (QoS 2 still takes paho's way)."""

    on_raw_message: RawHandler | None = None
    _buffer: bytes = b""
    _position: int = 0
    _buffered_from: object = None  # the socket the buffer was read from
    _draining: bool = False  # handling what is buffered: no new read from the socket

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._buffered_from is not self._sock:  # (re)connected: nothing of the old socket
            self._buffer, self._position, self._buffered_from = b"", 0, self._sock
        if self._position >= len(self._buffer):
            if self._draining:
                raise BlockingIOError  # paho keeps the partial packet; `select` says when
            self._buffer, self._position = super()._sock_recv(READ_SIZE), 0
        start = self._position
        self._position = min(start + bufsize, len(self._buffer))
        return self._buffer[start : self._position]

    def buffered(self) -> bool:
        return self._buffered_from is self._sock and self._position < len(self._buffer)

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        """paho's, until the buffer is drained (`select` does not see what is buffered), and no
        further: refilling it here would keep this loop going for as long as the broker
        streams, and paho's network thread would neither write the queued PUBACKs nor see
        `loop_stop()` until the stream paused (a subscriber slow to stop under load)."""
        rc = super().loop_read(max_packets)
        self._draining = True
        try:
            while rc == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS and self._sock and self.buffered():
                rc = super().loop_read(max_packets)
        finally:
            self._draining = False
        return rc

    def _handle_publish(self) -> mqtt.MQTTErrorCode:
        handler = self.on_raw_message
        header, packet = self._in_packet["command"], self._in_packet["packet"]
        qos = (header & 0x06) >> 1
        if handler is None or qos > 1 or self._protocol != mqtt.MQTTv5:
            return super()._handle_publish()
        at = 2 + int.from_bytes(packet[:2])
        topic = bytes(packet[2:at])
        mid = 0
        if qos:
            mid = int.from_bytes(packet[at : at + 2])
            at += 2
        properties, shift = 0, 0  # their length, a variable byte integer; skipped
        while at < len(packet):
            byte = packet[at]
            at += 1
            properties |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80 or shift > 21:
                break
        at += properties
        if at > len(packet) or (qos and not mid):
            return mqtt.MQTTErrorCode.MQTT_ERR_PROTOCOL  # paho's answer to a malformed packet
        handler(mid, qos, topic, packet[at:])
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    _pong: threading.Event | None = None

    def round_trip(self, timeout_s: float) -> bool:
        """Send a PINGREQ and wait up to `timeout_s` for its PINGRESP. A broker handles one
        client's packets in order, so after it every PUBACK queued before has been taken:
        closing the socket then loses none (a close with unread data in the socket, which a
        streaming broker always leaves, resets the connection, and the broker may drop what it
        had not read yet: acknowledged messages redelivered)."""
        self._pong = pong = threading.Event()
        if self._send_pingreq() != mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS:
            return False
        return pong.wait(timeout_s)

    def _handle_pingresp(self) -> mqtt.MQTTErrorCode:
        rc = super()._handle_pingresp()
        if self._pong is not None:
            self._pong.set()
        return rc

    def ack_all(self, mids: Iterable[int]) -> None:
        """Acknowledge QoS 1 messages (the subscription's maximum QoS) by packet id: their
        PUBACKs queued as one write (several MQTT packets in one TCP segment are as valid as
        one each)."""
        packet = b"".join(_PUBACK.pack(PUBACK, 2, mid) for mid in mids)
        if packet:
            self._packet_queue(PUBACK, packet, 0, 0)

"""The ingestion subscriber's paho client: fewer system calls per message.

paho 2.2 reads a packet with three or more `recv` calls (command byte, length bytes, the rest),
each packet after a `select`, and sends each PUBACK with a `send` of its own after waking its
network thread through a socket pair: about six system calls per QoS 1 message, most of the
subscriber's network thread at tens of thousands of messages per second. `BufferedClient`
reads the socket 64 KiB at a time and serves paho's reads from that buffer (every buffered
packet is handled before `select` waits again), and `ack_all` queues the PUBACKs of a committed
batch as one write (`ack_all`). Both rely on paho internals (`_sock_recv`, `loop_read`, `_packet_queue`);
paho is pinned in pyproject.toml and tests/backend/meters/test_mqtt_client.py checks them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import paho.mqtt.client as mqtt

READ_SIZE = 65_536
PUBACK = 0x40  # MQTT control packet type 4
_PUBACK = struct.Struct("!BBH")  # PUBACK, remaining length 2 (reason: success), packet id


class BufferedClient(mqtt.Client):
    """A paho client reading its socket in READ_SIZE chunks."""

    _buffer: bytes = b""
    _position: int = 0
    _buffered_from: object = None  # the socket the buffer was read from

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._buffered_from is not self._sock:  # (re)connected: nothing of the old socket
            self._buffer, self._position, self._buffered_from = b"", 0, self._sock
        if self._position >= len(self._buffer):
            self._buffer, self._position = super()._sock_recv(READ_SIZE), 0
        start = self._position
        self._position = min(start + bufsize, len(self._buffer))
        return self._buffer[start : self._position]

    def buffered(self) -> bool:
        return self._buffered_from is self._sock and self._position < len(self._buffer)

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        """paho's, until the buffer is drained: `select` does not see what is buffered."""
        rc = super().loop_read(max_packets)
        while rc == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS and self._sock and self.buffered():
            rc = super().loop_read(max_packets)
        return rc

    def ack_all(self, mids: Iterable[int]) -> None:
        """Acknowledge QoS 1 messages (the subscription's maximum QoS) by packet id: their
        PUBACKs queued as one write (several MQTT packets in one TCP segment are as valid as
        one each)."""
        packet = b"".join(_PUBACK.pack(PUBACK, 2, mid) for mid in mids)
        if packet:
            self._packet_queue(PUBACK, packet, 0, 0)

"""Small ASGI pieces the pure-ASGI middlewares share."""

from __future__ import annotations

from starlette.types import Message, Send


class StatusWatch:
    """A `send` that passes every message on and remembers the response status."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 500

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)


class ResponseCapture:
    """A `send` that keeps the response (status, headers, body) instead of sending it."""

    def __init__(self) -> None:
        self.start: Message | None = None
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))

    @property
    def status(self) -> int:
        return self.start["status"] if self.start is not None else 500

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def headers(self) -> list[tuple[bytes, bytes]]:
        """Headers without content-length (the sender sets it for the body it sends)."""
        raw = self.start.get("headers", []) if self.start is not None else []
        return [(k, v) for k, v in raw if k.lower() != b"content-length"]


async def send_body(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})

"""The machine's floor for api_read: a bare ASGI app under the same uvicorn (uvloop, httptools)
answering every request with fixed bytes — the order book's body, read once from the file
named by GRIDLEDGER_BENCH_FLOOR_BODY. No framework, no database: what one worker process of
this machine can serve at all, to set our figures against."""

from __future__ import annotations

import os
from pathlib import Path

from starlette.types import Receive, Scope, Send

BODY = Path(os.environ["GRIDLEDGER_BENCH_FLOOR_BODY"]).read_bytes()
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))],
}
MESSAGE = {"type": "http.response.body", "body": BODY}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send(START)
    await send(MESSAGE)

"""`python -m backend.openadr`: run the VTN until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

import uvloop

from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.openadr.vtn import Vtn


async def serve() -> None:
    settings = get_settings()
    vtn = Vtn(settings, get_engine())
    await vtn.start()
    logging.getLogger(__name__).info("VTN serving at %s", vtn.url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await vtn.stop()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # a line per message (openleadr's answer, aiohttp's access log) costs a poll dearly
    for chatty in ("openleadr", "aiohttp.access"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    uvloop.run(serve())  # its TLS and sockets cost a poll less than asyncio's


if __name__ == "__main__":
    main()

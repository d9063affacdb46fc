"""The VTN benchmark's floor: an aiohttp server with the VTN's TLS (TLS 1.3, client
certificates required) answering every POST with one fixed oadrResponse, no parsing, no
signatures, no database. `python -m bench._vtn_floor PORT CERT KEY CA`."""

from __future__ import annotations

import ssl
import sys

from aiohttp import web
from openleadr.messaging import create_message

from backend.core.tls import MINIMUM_VERSION


def main() -> None:
    port, cert, key, ca = sys.argv[1:5]
    answer = create_message(
        "oadrResponse",
        response={"response_code": 200, "response_description": "OK", "request_id": None},
        ven_id="",
    )

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text=answer, content_type="application/xml")

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
    context.load_cert_chain(cert, key)
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = MINIMUM_VERSION
    app = web.Application()
    app.add_routes([web.post("/OpenADR2/Simple/2.0b/{service}", handle)])
    web.run_app(app, host="127.0.0.1", port=int(port), ssl_context=context, print=None)


if __name__ == "__main__":
    main()

"""bench/_wrk.py against a small local HTTP server: with `body_headers` every POSTed body
carries its own header value (several makers' orders in one load), whatever connection or wrk
thread sends it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from bench._wrk import available, run_wrk

pytestmark = pytest.mark.skipif(not available(), reason="wrk is not installed (make bench)")


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[tuple[str | None, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((self.headers.get("Authorization"), body))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_each_body_is_sent_with_its_own_header_value():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        bodies = [json.dumps({"n": n}) for n in range(50)]
        values = [f"Bearer maker-{n % 7}-{n}" for n in range(50)]
        result = run_wrk(
            f"http://127.0.0.1:{server.server_address[1]}/orders",
            connections=4,
            duration_s=1,
            bodies=bodies,
            headers={"Authorization": "Bearer default"},
            body_headers=("Authorization", values),
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result["requests"] > 0
    assert result["errors"] == 0
    expected = dict(zip(bodies, values, strict=True))
    assert _Recorder.seen
    for authorization, body in _Recorder.seen:
        assert authorization == expected[body.decode()]


def test_one_value_per_body_or_none():
    with pytest.raises(ValueError, match="one value per body"):
        run_wrk(
            "http://127.0.0.1:9/",
            duration_s=1,
            bodies=["{}", "{}"],
            body_headers=("Authorization", ["only one"]),
        )

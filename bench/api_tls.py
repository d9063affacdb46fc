"""What TLS 1.3 costs the API: the same `python -m backend` served over plain HTTP (the
baseline) and over HTTPS with the development CA, both running at once, measured in
alternating rounds so machine noise hits both alike.

Figures (GET /openapi.json, medians):
- `http_keepalive_ms`, `https_keepalive_ms` and their ratio: a request on an open connection;
- `http_new_connection_ms`, `https_new_connection_ms` and their ratio: a request on a new
  connection (TCP, and for HTTPS the TLS 1.3 handshake with an ECDSA P-256 certificate).
Both clients get a ready-made SSL context: building one per client costs more than a handshake.
"""

from __future__ import annotations

import os
import ssl
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from backend.chain.anvil import free_port
from backend.core.config import Settings
from backend.core.tls import client_context, prepare
from scripts.devnet import start_component, stop_component, wait_for_api

ROUNDS, KEEPALIVE_PER_ROUND, NEW_PER_ROUND = 8, 40, 8
PATH = "/openapi.json"


@contextmanager
def api(data_dir: Path, tls: str) -> Iterator[tuple[str, ssl.SSLContext]]:
    """The API process (`tls` "off" or "dev"); yields its URL and the context to trust it."""
    saved = dict(os.environ)
    try:
        for name in [k for k in os.environ if k.startswith("GRIDLEDGER_")]:
            del os.environ[name]
        os.environ |= {
            "GRIDLEDGER_DATA_DIR": str(data_dir),
            "GRIDLEDGER_TLS": tls,
            "GRIDLEDGER_API_PORT": str(free_port()),
            "GRIDLEDGER_SIMULATE": "false",
        }
        settings = Settings(_env_file=None)
        prepare(settings)
        process = start_component("api", module="backend", config=settings)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        context = client_context(settings) if settings.tls_enabled else ssl.create_default_context()
        wait_for_api(settings.api_url, process, verify=context)
        yield settings.api_url, context
    finally:
        stop_component(process)


def _get_ms(client: httpx.Client, url: str) -> float:
    started = time.perf_counter()
    client.get(url + PATH).raise_for_status()
    return (time.perf_counter() - started) * 1000


def run() -> Iterator[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="gl-bench-tls-") as tmp, ExitStack() as stack:
        servers = {
            scheme: stack.enter_context(api(Path(tmp) / scheme, tls))
            for scheme, tls in (("http", "off"), ("https", "dev"))
        }
        clients = {s: stack.enter_context(httpx.Client(verify=c)) for s, (_, c) in servers.items()}
        keepalive: dict[str, list[float]] = {s: [] for s in servers}
        fresh: dict[str, list[float]] = {s: [] for s in servers}
        for scheme, (url, _) in servers.items():
            for _ in range(20):
                clients[scheme].get(url + PATH).raise_for_status()
        for _ in range(ROUNDS):
            for scheme, (url, context) in servers.items():
                client = clients[scheme]
                keepalive[scheme] += [_get_ms(client, url) for _ in range(KEEPALIVE_PER_ROUND)]
                for _ in range(NEW_PER_ROUND):
                    with httpx.Client(verify=context) as once:
                        fresh[scheme].append(_get_ms(once, url))
    medians = {
        (kind, scheme): statistics.median(samples[scheme])
        for kind, samples in (("keepalive", keepalive), ("new_connection", fresh))
        for scheme in ("http", "https")
    }
    for (kind, scheme), value in medians.items():
        yield {"metric": f"{scheme}_{kind}_ms", "value": round(value, 2), "unit": "ms"}
    for kind in ("keepalive", "new_connection"):
        ratio = medians[(kind, "https")] / medians[(kind, "http")]
        yield {"metric": f"https_over_http_{kind}", "value": round(ratio, 2), "unit": "ratio"}

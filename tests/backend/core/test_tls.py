"""`python -m backend` with GRIDLEDGER_TLS=dev serves HTTPS with the development CA and
refuses clients that cannot speak TLS 1.3 (real sockets, the real entry point, started and
awaited over HTTPS the way `make run` does)."""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Iterator

import httpx
import pytest

from backend.chain.anvil import free_port
from backend.core.config import Settings
from backend.core.errors import ConfigurationError
from backend.core.tls import client_context, prepare, uvicorn_options
from scripts.devnet import start_component, stop_component, wait_for_api


@pytest.fixture(scope="module")
def https_api(tmp_path_factory) -> Iterator[Settings]:
    """The API process as `make run` starts it, over HTTPS on a free port, its data (SQLite,
    the CA) in a fresh folder."""
    data_dir = tmp_path_factory.mktemp("tls-api")
    with pytest.MonkeyPatch.context() as env:  # components read their settings from the env
        for name in [k for k in os.environ if k.startswith("GRIDLEDGER_")]:
            env.delenv(name)
        env.setenv("GRIDLEDGER_DATA_DIR", str(data_dir))
        env.setenv("GRIDLEDGER_TLS", "dev")
        env.setenv("GRIDLEDGER_API_PORT", str(free_port()))
        env.setenv("GRIDLEDGER_SIMULATE", "false")
        settings = Settings(_env_file=None)
        prepare(settings)  # as `make run` does first, so this client can load the CA
        process = start_component("api", module="backend", config=settings)
    try:
        wait_for_api(settings.api_url, process, verify=client_context(settings))
        yield settings
    finally:
        stop_component(process)


def handshake(settings: Settings, context: ssl.SSLContext) -> str | None:
    with (
        socket.create_connection(("127.0.0.1", settings.api_port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return tls.version()


def test_a_tls13_client_that_trusts_the_dev_ca_gets_answers(https_api):
    assert https_api.api_url.startswith("https://127.0.0.1:")
    assert handshake(https_api, client_context(https_api)) == "TLSv1.3"
    reply = httpx.get(f"{https_api.api_url}/openapi.json", verify=client_context(https_api))
    assert reply.status_code == 200 and reply.json()["info"]["title"] == "GridLedger"


def test_a_client_limited_to_tls12_is_refused(https_api):
    context = ssl.create_default_context(cafile=https_api.tls_ca_file)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    # uvloop's TLS drops the connection without an alert (SSLEOFError); the same client gets
    # through when the server's minimum version is left at OpenSSL's default (TLS 1.2)
    with pytest.raises(ssl.SSLError):
        handshake(https_api, context)
    assert handshake(https_api, client_context(https_api)) == "TLSv1.3"  # the server lives on


def test_plain_http_and_untrusted_clients_get_nothing(https_api):
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{https_api.api_port}/openapi.json", timeout=5)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{https_api.api_url}/openapi.json", timeout=5)  # system CAs only


def test_dev_mode_puts_the_files_under_the_data_dir_and_on_needs_certificates(tmp_path):
    dev = Settings(_env_file=None, data_dir=tmp_path, tls="dev")
    assert (dev.tls_cert_file, dev.tls_key_file, dev.tls_ca_file) == (
        tmp_path / "tls" / "server.pem",
        tmp_path / "tls" / "server.key",
        tmp_path / "tls" / "ca.pem",
    )
    assert dev.mqtt_broker_port == 8883 and dev.api_url.startswith("https://")
    off = Settings(_env_file=None, data_dir=tmp_path)
    assert off.mqtt_broker_port == 1883 and off.api_url.startswith("http://")
    assert uvicorn_options(off) == {}
    with pytest.raises(ConfigurationError, match="GRIDLEDGER_TLS_CERT_FILE"):
        Settings(_env_file=None, data_dir=tmp_path, tls="on")


def test_the_development_ca_is_refused_outside_the_devnet(tmp_path):
    with pytest.raises(ConfigurationError, match="GRIDLEDGER_TLS=dev is the development CA"):
        Settings(_env_file=None, data_dir=tmp_path, tls="dev", chain_id=1)
    assert Settings(_env_file=None, data_dir=tmp_path, tls="dev").tls == "dev"  # devnet: fine

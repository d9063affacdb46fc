"""TLS contexts from settings: TLS 1.3 minimum on both ends (WIA-ENE-014 ENE-302 asks for it).

`uvicorn_options` is what the API serves HTTPS with; `client_context` is what our own clients
(devnet's health check, the neighbourhood, the MQTT subscriber and meter publishers) verify
the API and the broker with. `prepare` makes the development CA's files when
`GRIDLEDGER_TLS=dev` (first run), so every component can then load them.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from backend.core.config import Settings
from backend.core.dev_ca import ServerFiles, ensure_server_files

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_3


def prepare(settings: Settings) -> ServerFiles | None:
    """The development CA and server certificate under data_dir/tls (created once, then
    reused) when `GRIDLEDGER_TLS=dev`; None otherwise."""
    if settings.tls != "dev":
        return None
    return ensure_server_files(settings.tls_cert_file.parent)


def uvicorn_context_factory(
    config: object, default_factory: Callable[[], ssl.SSLContext]
) -> ssl.SSLContext:
    """uvicorn's `ssl_context_factory`: its own context (certificate chain, ALPN) with TLS 1.3
    as the minimum version. A module-level function, so worker processes can unpickle it."""
    context = default_factory()
    context.minimum_version = MINIMUM_VERSION
    return context


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments that make `uvicorn.run`/`uvicorn.Config` serve HTTPS (none when
    TLS is off)."""
    if not settings.tls_enabled:
        return {}
    return {
        "ssl_certfile": str(settings.tls_cert_file),
        "ssl_keyfile": str(settings.tls_key_file),
        "ssl_context_factory": uvicorn_context_factory,
    }


def client_context(settings: Settings) -> ssl.SSLContext:
    """Verifies the server's certificate and name against `tls_ca_file` (the system's CAs
    when unset)."""
    ca_file = settings.tls_ca_file if settings.tls_ca_file.name else None
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = MINIMUM_VERSION
    return context


def http_verify(settings: Settings) -> ssl.SSLContext | bool:
    """httpx's `verify=` for our clients of the API."""
    return client_context(settings) if settings.tls_enabled else True


def secure_mqtt(client: mqtt.Client, settings: Settings) -> None:
    """Switch a paho client to TLS 1.3 when TLS is on (connect to `mqtt_broker_port`)."""
    if settings.tls_enabled:
        client.tls_set_context(client_context(settings))


def service_mqtt_client(
    settings: Settings,
    client_id: str,
    *,
    manual_ack: bool = False,
    factory: type[mqtt.Client] = mqtt.Client,
) -> mqtt.Client:
    """An MQTT 5 client of our own services (ingestion, dispatcher): the service login when one
    is set, TLS when on; `factory` is paho's class or a subclass of it."""
    client = factory(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    if settings.mqtt_username:
        client.username_pw_set(settings.mqtt_username, settings.mqtt_password.get_secret_value())
    secure_mqtt(client, settings)  # TLS 1.3 to the broker's TLS listener when on
    return client

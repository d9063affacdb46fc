"""`GRIDLEDGER_TLS=dev make run`: the development CA and a Mosquitto TLS listener that only
TLS 1.3 clients trusting the CA get through; a second stack reuses the running broker."""

from __future__ import annotations

import ssl

import pytest
from web3 import Web3

from backend.chain.anvil import free_port
from backend.core.config import Settings
from backend.core.tls import client_context
from scripts.devnet import Stack, tls_answers


@pytest.mark.mqtt  # starts a Mosquitto of its own
def test_tls_dev_starts_a_tls13_broker_once(tmp_path, monkeypatch):
    port = free_port()
    for name, value in {
        "GRIDLEDGER_TLS": "dev",
        "GRIDLEDGER_DATA_DIR": str(tmp_path),
        "GRIDLEDGER_MQTT_TLS_PORT": str(port),
    }.items():
        monkeypatch.setenv(name, value)  # the components read their settings from the env
    config = Settings(_env_file=None)
    stack = Stack(config, Web3(), anvil=None)
    try:
        stack.start_tls_broker()
        assert list(stack.components) == ["broker"]
        address = ("127.0.0.1", port)
        assert tls_answers(address, client_context(config))
        tls12 = ssl.create_default_context(cafile=config.tls_ca_file)
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        assert not tls_answers(address, tls12)
        assert not tls_answers(address, ssl.create_default_context())  # CA not trusted

        again = Stack(config, Web3(), anvil=None)
        again.start_tls_broker()
        assert again.components == {}  # the broker already there is used
    finally:
        stack.shut_down()
    assert stack.components["broker"].returncode is not None

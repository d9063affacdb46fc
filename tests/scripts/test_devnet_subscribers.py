"""`make run` starts `GRIDLEDGER_MQTT_SUBSCRIBERS` ingest processes on one shared subscription,
each supervised under its own name and client id."""

from __future__ import annotations

import pytest
from web3 import Web3

from backend.core.config import Settings
from scripts.devnet import Stack
from tests.fixtures.mqtt import forget_session, unique, wait_until
from tests.fixtures.services import require_service


@pytest.mark.mqtt
def test_two_subscriber_processes_share_one_subscription(fresh_pg_url, tmp_path, monkeypatch):
    """The components read their settings from the environment, as under `make run`."""
    require_service("Mosquitto", "mqtt://127.0.0.1:1883", "GRIDLEDGER_MQTT_HOST")
    client = unique("gl-ingest")
    for key, value in {
        "DATA_DIR": str(tmp_path),
        "DATABASE_URL": fresh_pg_url,
        "MQTT_TOPIC_ROOT": unique("energy-cloud-test"),
        "MQTT_SHARED_GROUP": unique("group"),
        "MQTT_CLIENT_ID": client,
        "MQTT_SUBSCRIBERS": "2",
    }.items():
        monkeypatch.setenv(f"GRIDLEDGER_{key}", value)
    config = Settings(_env_file=None)
    assert config.mqtt_client_id == client and config.mqtt_subscribers == 2
    stack = Stack(config, Web3(), anvil=None)
    try:
        stack.start_subscribers()
        assert sorted(stack.components) == ["mqtt", "mqtt-1"]
        logs = {name: tmp_path / "logs" / f"{name}.log" for name in ("mqtt", "mqtt-1")}
        shared = f"$share/{config.mqtt_shared_group}/{config.mqtt_topic_root}/+/+/+/+"
        expected = {name: f"subscribed to {shared} as {client}-{i}" for i, name in enumerate(logs)}
        assert wait_until(
            lambda: all(expected[n] in p.read_text() for n, p in logs.items() if p.exists()),
            timeout_s=90,
        ), {n: p.read_text() for n, p in logs.items() if p.exists()}
        assert all(process.poll() is None for process in stack.components.values())
    finally:
        stack.shut_down()
        for i in range(2):
            forget_session(f"{client}-{i}")
    assert stack.components == {} or all(p.poll() is not None for p in stack.components.values())

"""Fixtures of the MQTT tests in this folder."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from backend.core.config import Settings
from backend.core.db import make_engine
from tests.fixtures.meters import seed_meters
from tests.fixtures.mqtt import Publisher, forget_session, unique
from tests.fixtures.services import require_service


@pytest.fixture
def world(fresh_pg_url):
    """The seeded meters in a fresh database, subscriber settings on a topic root of its own
    (no shared subscription), a paho publisher, and a list of client ids whose persistent
    sessions are dropped from the broker afterwards."""
    require_service("Mosquitto", "mqtt://127.0.0.1:1883", "GRIDLEDGER_MQTT_HOST")
    engine = make_engine(fresh_pg_url)
    with Session(engine) as session:
        seed_meters(session)
        session.commit()
    root = unique("energy-cloud-test")
    settings = Settings(
        _env_file=None, database_url=fresh_pg_url, mqtt_topic_root=root, mqtt_shared_group=""
    )
    client_ids: list[str] = []
    publisher = Publisher()
    yield engine, settings, root, client_ids, publisher
    publisher.close()
    for client_id in client_ids:
        forget_session(client_id)
    engine.dispose()

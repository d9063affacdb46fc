"""`GET /v1/admin/dead-letters` (operators and admins) and the dead-letter gauges in `/metrics`."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from backend.api.deps import get_db
from backend.core.config import Settings, get_settings
from backend.deadletters import services
from backend.main import create_app
from tests.fixtures.api import bearer_for


@pytest.fixture
def api(db_session, tmp_path):
    config = Settings(_env_file=None, data_dir=tmp_path)
    app = create_app()
    app.dependency_overrides[get_db] = lambda: db_session
    app.dependency_overrides[get_settings] = lambda: config
    services.record(
        db_session.connection(),
        source="mqtt",
        topic="energy-cloud/r1/meter/m1/reading",
        payload=b'{"unit": ["Wh"]}',
        reason="unit must be Wh or kWh, got list",
        max_bytes=1024,
    )
    db_session.flush()

    def bearer(*roles: str) -> dict[str, str]:
        return bearer_for(db_session, config, *roles)

    return TestClient(app, client=("127.0.0.1", 50000)), bearer


def test_operators_and_admins_see_dead_letters(api):
    client, bearer = api
    for role in ("operator", "admin"):
        reply = client.get("/v1/admin/dead-letters", headers=bearer(role))
        assert reply.status_code == 200, reply.text
        (item,) = reply.json()["items"]
        assert item["reason"] == "unit must be Wh or kWh, got list"
        assert item["payload_preview"] == '{"unit": ["Wh"]}'
        assert (item["source"], item["count"]) == ("mqtt", 1)


def test_participants_do_not(api):
    client, bearer = api
    reply = client.get("/v1/admin/dead-letters", headers=bearer("participant"))
    assert reply.status_code == 403
    assert client.get("/v1/admin/dead-letters").status_code == 401


def test_metrics_expose_the_dead_letter_gauges(api):
    client, _ = api
    text = client.get("/metrics").text
    assert "gridledger_dead_letters 1.0" in text
    assert "gridledger_dead_letter_deliveries 1.0" in text

"""Without Redis (make run's embedded defaults) the WebSocket is fed from the outbox table."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.core.config import Settings
from backend.core.utc import utc_now
from indexer.models import OutboxMessage
from tests.fixtures.app import app_on


def test_websocket_reads_the_outbox_table_when_redis_is_not_configured(fresh_pg_url, tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path, database_url=fresh_pg_url, redis_url="")
    app, engine = app_on(fresh_pg_url, settings)

    def publish(topic: str, payload: dict) -> None:
        with Session(engine) as session:
            session.add(
                OutboxMessage(
                    chain_id=31337,
                    block_number=1,
                    topic=topic,
                    payload=payload,
                    created_at=utc_now(),
                )
            )
            session.commit()

    publish("certificate.issued", {"tx_hash": "0xold", "certificate_ids": [1]})  # before connecting
    with TestClient(app) as client, client.websocket_connect("/v1/ws") as ws:
        ws.send_json({"action": "subscribe", "channels": ["recs"]})
        assert ws.receive_json()["payload"]["channels"] == ["recs"]
        publish("certificate.issued", {"tx_hash": "0xnew", "certificate_ids": [2, 3]})
        message = ws.receive_json()
    assert message["channel"] == "recs"
    assert message["payload"] == {
        "event": "certificate.issued",
        "tx_hash": "0xnew",
        "certificate_ids": [2, 3],
    }
    health = TestClient(app).get("/health").json()
    assert health["checks"]["redis"]["ok"] and health["checks"]["redis"]["configured"] is False
    engine.dispose()

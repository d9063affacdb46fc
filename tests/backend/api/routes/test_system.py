"""/health (DB, Redis, RPC, indexer lag; why a check failed only for operators) and /metrics
(a bearer token, or loopback clients on the local devnet)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session

from backend.accounts.models import Account, AccountKind, Role
from backend.accounts.security import create_access_token
from tests.fixtures.indexing import catch_up

METRICS_TOKEN = "scrape-" + "x7Kq9" * 8


def headers_of(chain_api, *roles: Role) -> dict[str, str]:
    with Session(chain_api.engine) as session:
        account = Account(
            kind=AccountKind.WALLET,
            address="0x" + "0e" * 20 if roles else "0x" + "0a" * 20,
            roles=[r.value for r in roles] or [Role.PARTICIPANT.value],
        )
        session.add(account)
        session.commit()
        token = create_access_token(account.id, account.roles, chain_api.settings)
    return {"Authorization": f"Bearer {token}"}


def test_health_reports_indexer_lag_and_metrics_count_requests(chain_api):
    client, devnet = chain_api.client, chain_api.devnet
    chain_api.settings.metrics_token = SecretStr(METRICS_TOKEN)
    before = client.get("/health")
    assert before.status_code == 503 and before.json()["checks"]["indexer"]["ok"] is False
    assert before.json()["checks"]["database"]["ok"] and before.json()["checks"]["rpc"]["ok"]
    indexer = chain_api.indexer()
    catch_up(indexer)
    healthy = client.get("/health")
    assert healthy.status_code == 200, healthy.text
    assert healthy.json()["checks"]["indexer"]["lag_blocks"] == 0
    queue = healthy.json()["checks"]["queue"]
    assert queue == {"ok": True, "broker": "redis", "depth": 0, "latency_ms": queue["latency_ms"]}
    devnet.workload.advance(60)  # one block the indexer has not seen
    devnet.workload.advance(60)
    lagging = client.get("/health").json()["checks"]["indexer"]
    assert lagging["lag_blocks"] == 2 and lagging["lag_seconds"] >= 120

    client.get("/v1/trading/orders/0x" + "ab" * 32)  # 401, labelled by its template, not its path
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert metrics.status_code == 200
    assert (
        'gridledger_http_requests_total{method="GET",route="/health",status="200"}' in metrics.text
    )
    assert (
        'gridledger_http_requests_total{method="GET",route="/v1/trading/orders/{order_id}",status="401"}'
        in metrics.text
    )


def test_health_is_503_when_rpc_is_down_and_only_operators_see_why(chain_api):
    chain_api.settings.rpc_url = "http://127.0.0.1:9"  # nothing listens on the discard port
    anonymous = chain_api.client.get("/health")
    assert anonymous.status_code == 503 and anonymous.json()["checks"]["rpc"]["ok"] is False
    assert "127.0.0.1" not in anonymous.text and "error" not in anonymous.json()["checks"]["rpc"]
    participant = chain_api.client.get("/health", headers=headers_of(chain_api))
    assert "error" not in participant.json()["checks"]["rpc"]
    operator = chain_api.client.get("/health", headers=headers_of(chain_api, Role.OPERATOR))
    assert operator.status_code == 503
    assert "Connection" in operator.json()["checks"]["rpc"]["error"]
    assert operator.json()["checks"]["redis"]["configured"] is True


def test_health_refuses_bad_credentials(chain_api):
    reply = chain_api.client.get("/health", headers={"Authorization": "Bearer nonsense"})
    assert reply.status_code == 401


@pytest.mark.parametrize(
    ("client_host", "token", "presented", "expected"),
    [
        ("127.0.0.1", None, None, 200),  # the devnet's Prometheus on the same host
        ("10.1.2.3", None, None, 401),  # anyone else
        ("10.1.2.3", METRICS_TOKEN, None, 401),
        ("127.0.0.1", METRICS_TOKEN, "wrong", 401),  # with a token, loopback is not enough
        ("10.1.2.3", METRICS_TOKEN, METRICS_TOKEN, 200),
    ],
)
def test_metrics_need_a_token_or_loopback(chain_api, client_host, token, presented, expected):
    chain_api.settings.metrics_token = SecretStr(token) if token else None
    client = TestClient(chain_api.client.app, client=(client_host, 50_000))
    headers = {"Authorization": f"Bearer {presented}"} if presented else {}
    assert client.get("/metrics", headers=headers).status_code == expected


def test_metrics_outside_the_devnet_need_a_token_even_from_loopback(chain_api):
    chain_api.settings.chain_id = 10  # settings already validated; the route asks the property
    client = TestClient(chain_api.client.app, client=("127.0.0.1", 50_000))
    assert client.get("/metrics").status_code == 401

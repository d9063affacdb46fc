"""/health (DB, Redis, RPC, indexer lag; why a check failed only for operators) and /metrics
(a bearer token, or loopback clients on the local devnet)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session

from backend.accounts.models import Account, AccountKind, Role
from backend.accounts.security import create_access_token
from backend.health.heartbeats import WATCHED, write_heartbeat
from backend.settlement.services import close_due_periods
from tests.fixtures.app import app_on
from tests.fixtures.indexing import catch_up
from tests.fixtures.settlement import build_market

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


@pytest.fixture
def settlement_world(devnet, fresh_pg_url, redis_client):
    """Trades on the devnet and their mirror (tests/fixtures/settlement.py), no beat running."""
    yield from build_market(devnet, fresh_pg_url, redis_client)


def operator_headers(engine, settings) -> dict[str, str]:
    with Session(engine) as session:
        account = Account(kind=AccountKind.WALLET, address="0x" + "0f" * 20, roles=["operator"])
        session.add(account)
        session.commit()
        return {
            "Authorization": f"Bearer {create_access_token(account.id, account.roles, settings)}"
        }


def test_health_degrades_when_a_due_period_stays_unsettled_and_recovers(settlement_world):
    """No beat runs: the period passes its gate, then the threshold → degraded, naming it (for
    operators); the beat's task settles it → ok. Prometheus shows the same."""
    world = settlement_world
    workload = world.devnet.workload
    for _ in range(2):
        workload.signed_fill()
    world.catch_up()
    trades = world.open_trades()
    period_end = min(t.delivery_end for t in trades)
    settings = world.settings.model_copy(
        update={"clock": "chain", "health_settlement_late_s": 600, "health_outbox_late_s": 3_600}
    )
    gate = settings.settlement_gate_delay_s
    for component in WATCHED:  # matcher, MQTT subscriber and beat alive
        write_heartbeat(world.engine, component)
    app, engine = app_on(world.database_url, settings)
    operator = operator_headers(engine, settings)
    with TestClient(app, client=("127.0.0.1", 50_000)) as client:
        workload.advance(period_end + gate + 300 - workload.now())  # due, within the threshold
        world.catch_up()
        due = client.get("/health", headers=operator).json()
        assert due["status"] == "ok", due
        assert due["checks"]["settlement"]["oldest_unsettled_period_end"] == period_end
        assert 300 <= due["checks"]["settlement"]["late_s"] <= 600

        workload.advance(period_end + gate + 620 - workload.now())  # past the threshold
        public = client.get("/health")
        assert public.status_code == 200 and public.json()["status"] == "degraded"
        assert public.json()["checks"]["settlement"] == {"ok": False, "status": "degraded"}
        late = client.get("/health", headers=operator).json()["checks"]["settlement"]
        assert late["status"] == "degraded" and late["late_s"] >= 620
        period = datetime.fromtimestamp(period_end, UTC).isoformat().replace("+00:00", "Z")
        assert late["late"].startswith(f"period ending {period} not settled")
        assert late["since"] == datetime.fromtimestamp(period_end + gate, UTC).isoformat().replace(
            "+00:00", "Z"
        )
        gauges = client.get("/metrics").text
        assert 'gridledger_freshness_ok{check="settlement"} 0.0' in gauges
        assert 'gridledger_freshness{check="settlement",figure="late_s"}' in gauges

        # the beat resumes: its task closes the due periods (meter data or not, past the deadline)
        world.meter_readings({(t.seller_meter, t.delivery_start): 1_000 for t in trades})
        with Session(world.engine) as session:
            reports = close_due_periods(session, world.ctx, world.locks, settings)
        assert sum(r.settled for r in reports) == len(trades)
        world.catch_up()
        for component in WATCHED:
            write_heartbeat(world.engine, component)
        recovered = client.get("/health", headers=operator).json()
        assert recovered["checks"]["settlement"]["ok"], recovered["checks"]["settlement"]
        assert recovered["status"] == "ok", recovered
        assert 'gridledger_freshness_ok{check="settlement"} 1.0' in client.get("/metrics").text
    engine.dispose()

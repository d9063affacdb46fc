"""/health (DB, Redis, RPC, indexer lag) and /metrics."""

from __future__ import annotations

from tests.fixtures.indexing import catch_up


def test_health_reports_indexer_lag_and_metrics_count_requests(chain_api):
    client, devnet = chain_api.client, chain_api.devnet
    before = client.get("/health")
    assert before.status_code == 503 and before.json()["checks"]["indexer"]["ok"] is False
    assert before.json()["checks"]["database"]["ok"] and before.json()["checks"]["rpc"]["ok"]
    indexer = chain_api.indexer()
    catch_up(indexer)
    healthy = client.get("/health")
    assert healthy.status_code == 200, healthy.text
    assert healthy.json()["checks"]["indexer"]["lag_blocks"] == 0
    assert healthy.json()["checks"]["queue"] == {
        "ok": True,
        "broker": "redis",
        "depth": 0,
        "latency_ms": healthy.json()["checks"]["queue"]["latency_ms"],
    }
    devnet.workload.advance(60)  # one block the indexer has not seen
    devnet.workload.advance(60)
    lagging = client.get("/health").json()["checks"]["indexer"]
    assert lagging["lag_blocks"] == 2 and lagging["lag_seconds"] >= 120

    client.get("/v1/trading/orders/0x" + "ab" * 32)  # 401, labelled by its template, not its path
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert (
        'gridledger_http_requests_total{method="GET",route="/health",status="200"}' in metrics.text
    )
    assert (
        'gridledger_http_requests_total{method="GET",route="/v1/trading/orders/{order_id}",status="401"}'
        in metrics.text
    )


def test_health_is_503_when_rpc_is_down(chain_api):
    chain_api.settings.rpc_url = "http://127.0.0.1:9"  # nothing listens on the discard port
    reply = chain_api.client.get("/health")
    assert reply.status_code == 503 and reply.json()["checks"]["rpc"]["ok"] is False

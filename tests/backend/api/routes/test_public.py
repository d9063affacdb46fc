"""`/v1/public/...`: aggregated read-only views (no credentials) over a devnet with a settled
trade, an open trade, certificates and a claim; and `/` serving the dashboard."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.api.problems import install_problem_handlers
from backend.main import DashboardNotBuilt, mount_dashboard
from tests.fixtures.indexing import catch_up


def test_public_views_aggregate_trades_settlements_certificates_and_claims(chain_api):
    client, workload = chain_api.client, chain_api.devnet.workload
    market, registry = workload.c.market, workload.c.registry
    workload.matched()
    workload.matched()
    (settled_id, settled), (open_id, open_trade) = workload.open_trades
    workload.advance(settled[7] - workload.now() + 60)
    delivered = settled[4] // 2
    workload.tx(
        workload.settler, market.functions.settleBatch([settled], [settled_id], [delivered])
    )
    certificates = workload.issue(batch=3)
    holder = next(
        p
        for p in workload.people
        if registry.functions.balanceOf(p.address, certificates[0]).call()
    )
    now = workload.now()
    workload.tx(
        holder,
        registry.functions.claim(
            certificates[0], 100, ("ACME", "scope2", now - 60, now, b"\0" * 32)
        ),
    )
    catch_up(chain_api.indexer())

    summary = client.get("/v1/public/summary")
    assert summary.status_code == 200, summary.text
    body = summary.json()
    assert body["market"]["trades"] == 2 and body["market"]["settled_trades"] == 1
    assert body["market"]["open_trades"] == 1
    assert body["market"]["energy_traded_wh"] == str(settled[4] + open_trade[4])  # amounts: strings
    assert body["market"]["energy_delivered_wh"] == str(delivered)
    assert (
        body["registry"]["devices"] == {"approved": 4} and body["registry"]["capacity_w"] == "40000"
    )
    assert body["registry"]["certificates"] == 3 and body["registry"]["claims"] == 1
    assert body["registry"]["claimed_wh"] == "100"
    assert body["chain"]["indexed_block"] == chain_api.devnet.w3.eth.block_number

    rows = {r["trade_id"]: r for r in client.get("/v1/public/settlements").json()}
    assert list(rows) == [open_id, settled_id]  # newest first
    done = rows[settled_id]
    assert (done["status"], done["contracted_wh"], done["metered_wh"], done["delivered_wh"]) == (
        "settled",
        str(settled[4]),
        str(delivered),
        str(delivered),
    )
    assert int(done["penalty"]) > 0 and int(done["payout"]) + int(done["refund"]) == int(
        done["payment"]
    )  # penalty goes to the buyer
    assert done["settled_tx"].startswith("0x")
    assert rows[open_id]["status"] == "awaiting_settlement" and rows[open_id]["metered_wh"] is None
    assert "seller" not in done and "seller_meter" not in done  # aggregated, no parties or meters

    periods = client.get("/v1/public/energy/periods").json()
    assert sum(p["trades"] for p in periods) == 2
    assert sum(int(p["contracted_wh"]) for p in periods) == settled[4] + open_trade[4]
    assert sum(int(p["delivered_wh"]) for p in periods) == delivered

    hours = client.get("/v1/public/recs/issuance").json()
    assert [h["certificates"] for h in hours] == [1, 1, 1]
    assert [h["hour"] % 3600 for h in hours] == [0, 0, 0] and hours == sorted(
        hours, key=lambda h: h["hour"]
    )

    claims = client.get("/v1/public/recs/claims").json()
    assert [
        (c["claim_id"], c["certificate_id"], c["amount_wh"], c["technology"]) for c in claims
    ] == [(1, certificates[0], "100", "SOLAR_PV")]
    proof = client.get(claims[0]["proof"]).json()
    assert proof["tx_hash"] == claims[0]["tx_hash"] and proof["beneficiary"] == "ACME"

    assert client.get("/v1/public/settlements", params={"limit": 0}).status_code == 422


def test_root_serves_the_dashboard_or_says_how_to_build_it(client, tmp_path):
    assert client.get("/openapi.json").status_code == 200 and client.get("/docs").status_code == 200
    assert "/" not in client.get("/openapi.json").json()["paths"]

    empty = FastAPI()
    install_problem_handlers(empty)
    mount_dashboard(empty, tmp_path / "missing")
    missing = TestClient(empty).get("/")
    assert missing.status_code == 503 and missing.json()["type"].endswith(
        "/" + DashboardNotBuilt.code
    )
    assert "make setup" in missing.json()["detail"]

    built = tmp_path / "built"
    (built / "assets").mkdir(parents=True)
    (built / "index.html").write_text("<title>x</title>")
    (built / "assets" / "dashboard.js").write_text("export {};")
    served = FastAPI()
    mount_dashboard(served, built)
    with TestClient(served) as http:
        assert http.get("/").text == "<title>x</title>"
        assert (
            http.get("/assets/dashboard.js").headers["content-type"].startswith("text/javascript")
        )
        assert http.get("/assets/missing.js").status_code == 404

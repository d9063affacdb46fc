"""The `/v1/vpp` API: aggregators create and run VPPs, owners join and leave with their
resources, everyone signed in reads them in the seed's shape."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from backend.api.deps import get_db
from backend.main import create_app
from tests.backend.api.routes.test_meters import bearer
from tests.fixtures.resources import add_aggregator, add_pv, add_resource


@pytest.fixture
def api(metered):
    session, owner, other, *_ = metered
    app = create_app()
    app.dependency_overrides[get_db] = lambda: session
    return TestClient(app), session, owner, other, add_aggregator(session)


def test_vpp_lifecycle_in_the_seed_shape(api):
    client, session, owner, _other, aggregator = api
    battery, pv = add_resource(session, owner), add_pv(session, owner)
    battery.output_w, battery.soc_wh, pv.output_w = -1_500, 3_375, 4_000
    created = client.post(
        "/v1/vpp", json={"name": "Seoul VPP", "gridArea": "KR-SE-001"}, headers=bearer(aggregator)
    )
    assert created.status_code == 201, created.text
    vpp_id = created.json()["vppId"]
    for resource in (battery, pv):
        joined = client.post(
            f"/v1/vpp/{vpp_id}/resources",
            json={"resourceId": str(resource.id)},
            headers=bearer(owner),
        )
        assert joined.status_code == 201 and joined.json()["consentedBy"] == str(owner.id)
    vpp = client.get(f"/v1/vpp/{vpp_id}", headers=bearer(owner)).json()
    assert (vpp["capacity"], vpp["unit"], vpp["aggregatedOutput"], vpp["status"]) == (
        13_000,
        "W",
        2_500,
        "operational",
    )
    members = client.get(f"/v1/vpp/{vpp_id}/resources", headers=bearer(owner)).json()
    assert [(m["type"], m["current"], m["soc"]) for m in members] == [
        ("battery", -1_500, 0.25),
        ("pv", 4_000, None),
    ]
    renamed = client.put(f"/v1/vpp/{vpp_id}", json={"name": "Gangnam"}, headers=bearer(aggregator))
    assert renamed.json()["name"] == "Gangnam"
    left = client.delete(f"/v1/vpp/{vpp_id}/resources/{pv.id}", headers=bearer(owner))
    assert left.status_code == 200 and left.json()["endedBy"] == "left"
    assert client.delete(f"/v1/vpp/{vpp_id}", headers=bearer(aggregator)).status_code == 204
    gone = client.get(f"/v1/vpp/{vpp_id}", headers=bearer(owner))
    assert gone.status_code == 404 and gone.json()["type"].endswith("/vpp-not-found")


def test_only_aggregators_create_and_only_owners_consent(api):
    client, session, owner, other, aggregator = api
    refused = client.post("/v1/vpp", json={"name": "mine"}, headers=bearer(owner))
    assert refused.status_code == 403 and refused.json()["required_role"] == "aggregator"
    vpp_id = client.post("/v1/vpp", json={"name": "V"}, headers=bearer(aggregator)).json()["vppId"]
    battery = add_resource(session, owner)
    by_aggregator = client.post(
        f"/v1/vpp/{vpp_id}/resources",
        json={"resourceId": str(battery.id)},
        headers=bearer(aggregator),
    )
    assert by_aggregator.status_code == 403
    assert by_aggregator.json()["type"].endswith("/resource-access-denied")
    client.post(
        f"/v1/vpp/{vpp_id}/resources", json={"resourceId": str(battery.id)}, headers=bearer(owner)
    )
    twice = client.post(
        f"/v1/vpp/{vpp_id}/resources", json={"resourceId": str(battery.id)}, headers=bearer(owner)
    )
    assert twice.status_code == 409 and twice.json()["type"].endswith("/resource-in-another-vpp")
    stranger = client.delete(f"/v1/vpp/{vpp_id}/resources/{battery.id}", headers=bearer(other))
    assert stranger.status_code == 403
    assert (
        client.put(f"/v1/vpp/{vpp_id}", json={"name": "x"}, headers=bearer(other)).status_code
        == 403
    )

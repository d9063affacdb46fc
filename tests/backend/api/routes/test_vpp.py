"""The `/v1/vpp` API: aggregators create and run VPPs, owners join and leave with their
resources, everyone signed in reads them in the seed's shape."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from backend.api.deps import get_db
from backend.main import create_app
from backend.vpp.models import VppSchedule
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


def test_optimize_a_day_and_store_the_schedule_with_its_inputs(api):
    client, session, owner, _other, aggregator = api
    battery = add_resource(session, owner)  # 5 kW, 13.5 kWh, 0.95 each way, empty
    heat_pump = add_resource(
        session,
        owner,
        name="heat pump",
        kind="heat_pump",
        capacity_w=3_000,
        energy_capacity_wh=None,
    )
    vpp_id = client.post("/v1/vpp", json={"name": "V"}, headers=bearer(aggregator)).json()["vppId"]
    for resource in (battery, heat_pump):
        client.post(
            f"/v1/vpp/{vpp_id}/resources",
            json={"resourceId": str(resource.id)},
            headers=bearer(owner),
        )
    body = {
        "start": "2026-12-01T00:00:00Z",
        "buyPrice": [100] * 48 + [300] * 48,
        "demandWh": [0] * 48 + [1_000] * 48,
        "resources": {str(heat_pump.id): {"energyWh": 6_000}},
    }
    assert (
        client.post(f"/v1/vpp/{vpp_id}/optimize", json=body, headers=bearer(owner)).status_code
        == 403
    )
    reply = client.post(f"/v1/vpp/{vpp_id}/optimize", json=body, headers=bearer(aggregator))
    assert reply.status_code == 200, reply.text
    result = reply.json()
    assert result["status"] == "completed" and result["start"] == "2026-12-01T00:00:00Z"
    plans = {a["resourceId"]: a for a in result["allocation"]}
    pump = plans[str(heat_pump.id)]["setpointsW"]
    assert all(w == 0 for w in pump[48:]) and -sum(pump) * 0.25 == pytest.approx(6_000, abs=2)
    stored = plans[str(battery.id)]["socWh"]
    assert max(stored) == 13_500 and stored[47] == 13_500  # full before the dear half
    # bought: 13.5 kWh / 0.95 to fill the battery and 6 kWh for the heat pump at 100, then
    # the 48 kWh of demand less the 12.825 kWh the battery gives back at 300
    expected = (13_500 / 0.95 + 6_000) * 0.1 + (48_000 - 13_500 * 0.95) * 0.3
    assert result["cost"] == pytest.approx(expected, abs=1)
    schedule = session.get(VppSchedule, uuid.UUID(result["scheduleId"]))
    assert schedule.inputs["request"]["buyPrice"] == body["buyPrice"]
    assert schedule.result["cost"] == result["cost"] and schedule.start == 1_796_083_200


def test_optimize_refuses_plans_for_non_members_and_other_aggregators(api):
    client, session, owner, _other, aggregator = api
    vpp_id = client.post("/v1/vpp", json={"name": "V"}, headers=bearer(aggregator)).json()["vppId"]
    stranger = add_resource(session, owner)
    body = {"buyPrice": [100] * 96, "resources": {str(stranger.id): {"energyWh": 1}}}
    refused = client.post(f"/v1/vpp/{vpp_id}/optimize", json=body, headers=bearer(aggregator))
    assert refused.status_code == 422 and refused.json()["resources"] == [str(stranger.id)]
    rival = add_aggregator(session, "rival@example.org")
    theirs = client.post(f"/v1/vpp/{vpp_id}/optimize", json=body, headers=bearer(rival))
    assert theirs.status_code == 403 and theirs.json()["type"].endswith("/vpp-access-denied")
    short = client.post(
        f"/v1/vpp/{vpp_id}/optimize", json={"buyPrice": [1]}, headers=bearer(aggregator)
    )
    assert short.status_code == 422

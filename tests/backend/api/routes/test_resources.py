"""The DER registry API: register behind an owned meter, owner-only writes, decommission,
problem details for limits that do not fit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from backend.api.deps import get_db
from backend.main import create_app
from indexer.models import DeviceStatus
from tests.backend.api.routes.test_meters import bearer
from tests.fixtures.resources import add_device, add_resource, resource_body


@pytest.fixture
def api(metered):
    session, owner, other, _solar, house = metered
    app = create_app()
    app.dependency_overrides[get_db] = lambda: session
    return TestClient(app), owner, other, house


def test_register_read_update_decommission(api):
    client, owner, _other, house = api
    created = client.post("/v1/resources", json=resource_body(), headers=bearer(owner))
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["kind"], body["capacity_w"], body["energy_capacity_wh"]) == (
        "battery",
        5_000,
        13_500,
    )
    assert body["location"] == {"lat": 37.5665, "lng": 126.978}
    assert body["state"] == {
        "output": None,
        "soc": None,
        "status": "active",
        "available": True,
        "timestamp": None,
    }
    rid = body["id"]
    patched = client.patch(
        f"/v1/resources/{rid}",
        json={"meter": house.name, "max_charge_w": 2_500},
        headers=bearer(owner),
    )
    assert patched.status_code == 200 and patched.json()["meter_id"] == house.meter_id
    assert patched.json()["max_charge_w"] == 2_500
    mine = client.get("/v1/resources", headers=bearer(owner)).json()
    assert [r["id"] for r in mine] == [rid]
    retired = client.post(f"/v1/resources/{rid}/decommission", headers=bearer(owner))
    assert retired.json()["status"] == "decommissioned"
    again = client.patch(f"/v1/resources/{rid}", json={"name": "x"}, headers=bearer(owner))
    assert again.status_code == 409 and again.json()["type"].endswith("/resource-decommissioned")


def test_only_the_owner_writes(api):
    client, owner, other, _house = api
    rid = client.post("/v1/resources", json=resource_body(), headers=bearer(owner)).json()["id"]
    for reply in (
        client.patch(f"/v1/resources/{rid}", json={"name": "mine"}, headers=bearer(other)),
        client.post(f"/v1/resources/{rid}/decommission", headers=bearer(other)),
    ):
        assert reply.status_code == 403
        assert reply.json()["type"].endswith("/resource-access-denied")
    assert (
        client.get(f"/v1/resources/{rid}", headers=bearer(other)).json()["name"] == "home battery"
    )


def test_someone_elses_meter_and_bad_limits_are_problems(api):
    client, owner, other, _house = api
    theirs = client.post("/v1/resources", json=resource_body(), headers=bearer(other))
    assert theirs.status_code == 403 and theirs.json()["type"].endswith("/meter-access-denied")
    bad = client.post(
        "/v1/resources", json=resource_body(max_discharge_w=9_000), headers=bearer(owner)
    )
    assert bad.status_code == 422 and bad.json()["type"].endswith("/resource-limits-invalid")
    assert bad.json()["problems"] == ["max_discharge_w exceeds capacity_w"]


def test_properties_read_the_latest_state(api):
    client, owner, *_ = api
    rid = client.post("/v1/resources", json=resource_body(), headers=bearer(owner)).json()["id"]
    state = client.get(f"/v1/resources/{rid}/state", headers=bearer(owner)).json()
    assert state["status"] == "active"
    status = client.get(f"/v1/resources/{rid}/properties/status", headers=bearer(owner))
    assert status.json() == "active"
    assert client.get(f"/v1/resources/{rid}/properties/soc", headers=bearer(owner)).json() is None
    unknown = client.get(f"/v1/resources/{rid}/properties/voltage", headers=bearer(owner))
    assert unknown.status_code == 422


def test_properties_carry_the_reported_state(metered):
    session, owner, *_ = metered
    app = create_app()
    app.dependency_overrides[get_db] = lambda: session
    client = TestClient(app)
    battery = add_resource(session, owner)
    battery.output_w, battery.soc_wh = -2_500, 9_000
    battery.state_at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    session.commit()
    base = f"/v1/resources/{battery.id}"
    assert client.get(f"{base}/properties/output", headers=bearer(owner)).json() == -2_500
    assert client.get(f"{base}/properties/soc", headers=bearer(owner)).json() == 9_000
    state = client.get(f"{base}/state", headers=bearer(owner)).json()
    assert (state["output"], state["soc"], state["timestamp"]) == (
        -2_500,
        9_000,
        "2026-12-01T12:00:00Z",
    )


def test_storage_behind_a_rec_device_meter_is_a_409_problem(api, metered):
    client, owner, _other, house = api
    session, *_rest, solar, _house = metered
    add_device(session, solar.meter_id, DeviceStatus.APPROVED, device_id=3)
    refused = client.post("/v1/resources", json=resource_body(), headers=bearer(owner))
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["type"].endswith("/storage-behind-certified-meter")
    assert (problem["meter_id"], problem["device_id"]) == (solar.meter_id, 3)
    own = client.post("/v1/resources", json=resource_body(meter=house.name), headers=bearer(owner))
    assert own.status_code == 201, own.text
    moved = client.patch(
        f"/v1/resources/{own.json()['id']}", json={"meter": solar.name}, headers=bearer(owner)
    )
    assert moved.status_code == 409
    assert moved.json()["type"].endswith("/storage-behind-certified-meter")

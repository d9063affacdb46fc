"""WoT Thing Descriptions and the directory: every document served validates against the
W3C TD 1.1 JSON Schema; the directory filters and pages like WoT Discovery's listing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from backend.api.deps import get_db
from backend.core.config import get_settings
from backend.main import create_app
from backend.resources.thing_description import thing_description
from tests.backend.api.routes.test_meters import bearer
from tests.fixtures.resources import add_pv, add_resource
from tests.fixtures.wot import td_errors


@pytest.fixture
def api(metered):
    session, owner, other, *_ = metered
    app = create_app()
    app.dependency_overrides[get_db] = lambda: session
    return TestClient(app), session, owner, other


def test_a_battery_td_is_valid_and_points_at_our_endpoints(api):
    client, session, owner, other = api
    battery = add_resource(session, owner)
    reply = client.get(f"/v1/things/{battery.id}", headers=bearer(other))
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/td+json"
    td = reply.json()
    assert td_errors(td) == []
    assert td["id"] == f"urn:uuid:{battery.id}" and td["base"] == "http://testserver/v1/"
    assert set(td["properties"]) == {"output", "soc", "status"}
    assert td["properties"]["output"]["minimum"] == -5_000
    assert td["properties"]["soc"]["maximum"] == 13_500
    read = td["properties"]["soc"]["forms"][0]["href"]
    assert client.get(td["base"] + read, headers=bearer(owner)).status_code == 200
    command = td["actions"]["setpoint"]["forms"][0]
    assert command["mqv:topic"] == f"energy-cloud/KR-SE-001/battery/{battery.id}/command"
    assert command["href"] == "mqtt://127.0.0.1:1883" and command["mqv:qos"] == "1"
    assert td["actions"]["configure"]["forms"][0]["mqv:topic"].endswith("/config")
    assert td["events"]["statusChanged"]["forms"][0]["mqv:filter"].endswith("/status")
    everything = client.get(td["base"] + td["forms"][0]["href"], headers=bearer(owner))
    assert everything.json()["status"] == "active"


@pytest.mark.parametrize(
    "override",
    [
        {"kind": "pv", "energy_capacity_wh": None},
        {"kind": "ev_charger", "location": None},
        {"kind": "flexible_load", "energy_capacity_wh": None},
        {"kind": "heat_pump", "energy_capacity_wh": None},
    ],
)
def test_every_kind_gives_a_valid_td(metered, override):
    session, owner, *_ = metered
    td = thing_description(get_settings(), add_resource(session, owner, **override), "http://x/v1/")
    assert td_errors(td) == []
    assert ("soc" in td["properties"]) == (override["kind"] == "ev_charger")


def test_the_schema_check_can_fail(metered):
    session, owner, *_ = metered
    td = thing_description(get_settings(), add_resource(session, owner), "http://x/v1/")
    del td["security"]
    td["properties"]["output"]["forms"] = []
    errors = td_errors(td)
    assert any("security" in e for e in errors) and any("forms" in e for e in errors)


def test_directory_lists_tds_filtered_and_paged(api):
    client, session, owner, other = api
    battery = add_resource(session, owner)
    pv = add_pv(session, owner, grid_area="KR-BS-002")
    spare = add_resource(session, owner, name="spare", available=False)
    ids = {f"urn:uuid:{r.id}" for r in (battery, pv, spare)}

    def listing(**query):
        reply = client.get("/v1/things", params=query, headers=bearer(other))
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "application/ld+json"
        return reply

    every = listing().json()
    assert all(td_errors(td) == [] for td in every)
    assert {td["id"] for td in every} & ids == ids
    found = lambda **q: {td["id"] for td in listing(**q).json()} & ids  # noqa: E731
    assert found(type="pv") == {f"urn:uuid:{pv.id}"}
    assert found(area="KR-SE-001") == {f"urn:uuid:{battery.id}", f"urn:uuid:{spare.id}"}
    assert found(capability="storage", available="true") == {f"urn:uuid:{battery.id}"}
    first = listing(limit=2)
    assert len(first.json()) == 2 and 'rel="next"' in first.headers["link"]
    following = first.headers["link"].split(">")[0].lstrip("<")
    rest = client.get(following, headers=bearer(other)).json()
    assert {td["id"] for td in first.json()}.isdisjoint({td["id"] for td in rest})


def test_directory_needs_an_account_and_hides_decommissioned(api):
    client, session, owner, _other = api
    battery = add_resource(session, owner)
    assert client.get("/v1/things").status_code == 401
    client.post(f"/v1/resources/{battery.id}/decommission", headers=bearer(owner))
    listed = {td["id"] for td in client.get("/v1/things", headers=bearer(owner)).json()}
    assert f"urn:uuid:{battery.id}" not in listed
    assert client.get(f"/v1/things/{battery.id}", headers=bearer(owner)).status_code == 200

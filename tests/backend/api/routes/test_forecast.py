"""`POST /v1/energy/forecast` on PostgreSQL: a meter's readings and a VPP's telemetry become
96 integer Wh values with UTC timestamps, the backtest's accuracy, and a stored forecast with
its inputs; other people's meters, short histories and unknown targets are refused."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from fastapi.testclient import TestClient

from backend.api.deps import get_db
from backend.forecast.models import StoredForecast
from backend.forecast.synthetic import household_wh, pv_wh
from backend.forecast.weather import SimulatedWeather, slot_weather
from backend.main import create_app
from backend.meters.models import MeterReading
from backend.resources.models import TelemetrySample
from backend.vpp import services as vpp_services
from backend.vpp.schemas import VppCreate
from tests.backend.api.routes.test_meters import bearer
from tests.fixtures.resources import WALL, add_aggregator, add_pv, add_resource

SEOUL = {"lat": 37.5665, "lng": 126.978}
DAYS = 8
ORIGIN = 1_767_225_600 + DAYS * 86_400  # forecasts start here: 2026-01-09T00:00Z
FIRST = ORIGIN - DAYS * 86_400
SLOTS = DAYS * 96


def weather():
    return slot_weather(SimulatedWeather(0), **SEOUL, start=FIRST, slots=SLOTS)


def store_readings(session, meter_id: str, *, skip_every: int = 0) -> np.ndarray:
    values = np.rint(household_wh(FIRST, SLOTS, weather(), np.random.default_rng(1)))
    session.add_all(
        MeterReading(
            meter_id=meter_id,
            interval_start=FIRST + i * 900,
            import_wh=int(v),
            export_wh=0,
            source="bulk",
            verified=i % 2 == 0,
        )
        for i, v in enumerate(values)
        if not (skip_every and i % skip_every == 0)
    )
    session.flush()
    return values


@pytest.fixture
def api(metered):
    session, owner, other, solar, _house = metered
    app = create_app()
    app.dependency_overrides[get_db] = lambda: session
    return TestClient(app), session, owner, other, solar


def request(target: str, target_id: str, **extra) -> dict:
    start = datetime.fromtimestamp(ORIGIN, UTC).isoformat()
    return {"target": target, "targetId": target_id, "start": start} | extra


def test_a_meter_forecast_is_96_integer_slots_stored_with_its_inputs(api):
    client, session, owner, _other, solar = api
    history = store_readings(session, solar.meter_id)
    response = client.post(
        "/v1/energy/forecast", json=request("meter", solar.meter_id), headers=bearer(owner)
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["quantity"], body["unit"], body["horizon"], body["resolution"]) == (
        "netImportWh",
        "Wh",
        24,
        15,
    )
    assert len(body["values"]) == 96
    assert body["values"][0]["timestamp"] == "2026-01-09T00:00:00Z"
    assert body["values"][95]["timestamp"] == "2026-01-09T23:45:00Z"
    assert all(isinstance(p["value"], int) for p in body["values"])
    assert body["historySlots"] == SLOTS and body["historyFrom"] == "2026-01-01T00:00:00Z"
    backtest = body["backtest"]
    assert backtest["model"]["maeWh"] <= backtest["naive"]["maeWh"]
    assert body["model"] == "ridge-seasonal-weather"
    stored = session.get(StoredForecast, body["forecastId"])
    assert stored is not None and stored.values == [p["value"] for p in body["values"]]
    assert stored.inputs["history"] == [int(v) for v in history]
    assert stored.inputs["weather"]["provider"] == "simulated"
    assert len(stored.inputs["weather"]["perSlot"]["temperature_c"]) == SLOTS + 96


def test_verified_only_reads_half_the_readings_and_gaps_are_interpolated(api):
    client, session, owner, _other, solar = api
    store_readings(session, solar.meter_id, skip_every=20)
    everything = client.post(
        "/v1/energy/forecast", json=request("meter", solar.meter_id), headers=bearer(owner)
    )
    assert everything.status_code == 201, everything.text
    stored = session.get(StoredForecast, everything.json()["forecastId"])
    # slot 0 is missing too: the history starts at slot 1, with 38 gaps (20, 40, ..., 760)
    assert everything.json()["historySlots"] == SLOTS - 1
    assert stored.inputs["missingSlots"] == 38
    verified = client.post(
        "/v1/energy/forecast",
        json=request("meter", solar.meter_id, verifiedOnly=True),
        headers=bearer(owner),
    )
    assert verified.status_code == 422
    assert verified.json()["type"].endswith("/insufficient-history")


def test_someone_elses_meter_unknown_targets_and_short_histories_are_refused(api):
    client, session, owner, other, solar = api
    store_readings(session, solar.meter_id)
    denied = client.post(
        "/v1/energy/forecast", json=request("meter", solar.meter_id), headers=bearer(other)
    )
    assert denied.status_code == 403
    assert denied.json()["type"].endswith("/forecast-access-denied")
    unknown = client.post(
        "/v1/energy/forecast", json=request("meter", "0x" + "00" * 32), headers=bearer(owner)
    )
    assert unknown.status_code == 404
    early = client.post(
        "/v1/energy/forecast",
        json=request("meter", solar.meter_id, start="2026-01-07T23:45:00Z"),  # 167 h 45 min stored
        headers=bearer(owner),
    )
    assert early.status_code == 422 and early.json()["need"] == 672
    for start in ("9999-12-31T23:45:00Z", "1970-01-01T00:00:00Z", "2026-01-09T00:00:00"):
        odd = client.post(
            "/v1/energy/forecast",
            json=request("meter", solar.meter_id, start=start),
            headers=bearer(owner),
        )
        assert odd.status_code == 422, (start, odd.text)
    area = client.post(
        "/v1/energy/forecast", json=request("area", "KR-SE-001"), headers=bearer(owner)
    )
    assert area.status_code == 403


def test_a_vpp_forecast_sums_its_members_telemetry(api):
    client, session, owner, _other, _solar = api
    aggregator = add_aggregator(session)
    vpp = vpp_services.create_vpp(session, aggregator, VppCreate(name="Seoul VPP"))
    panels = [add_pv(session, owner, name=f"pv {i}") for i in range(2)]
    energy = pv_wh(SLOTS, weather(), np.random.default_rng(5))
    for panel in panels:
        vpp_services.join(session, WALL, owner, vpp.id, panel.id)
        session.add_all(  # two samples per slot: the slot's energy is their mean power × 15 min
            TelemetrySample(resource_id=panel.id, metric="output", at=FIRST + i * 900 + s, value=w)
            for i, wh in enumerate(energy)
            for s, w in ((0, int(wh * 4) - 10), (450, int(wh * 4) + 10))
        )
    session.flush()
    response = client.post(
        "/v1/energy/forecast", json=request("vpp", str(vpp.id)), headers=bearer(aggregator)
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["quantity"] == "outputWh" and body["weather"]["latitude"] == SEOUL["lat"]
    stored = session.get(StoredForecast, body["forecastId"])
    expected = [2 * int(wh * 4) / 4 for wh in energy]
    assert stored.inputs["history"] == [int(np.rint(v)) for v in expected]
    night = [p["value"] for p in body["values"][48:56]]  # 21:00-23:00 in Seoul (UTC+9)
    assert max(abs(v) for v in night) < 50
    assert max(p["value"] for p in body["values"]) > 500
    owner_asks = client.post(
        "/v1/energy/forecast", json=request("vpp", str(vpp.id)), headers=bearer(owner)
    )
    assert owner_asks.status_code == 403


def test_a_vpp_generation_forecast_reads_its_pv_members_only(api):
    """What the dispatch takes as generation: the battery's output (what an earlier schedule
    made it do) stays out, the VPP's own forecast keeps it."""
    client, session, owner, _other, _solar = api
    aggregator = add_aggregator(session)
    vpp = vpp_services.create_vpp(session, aggregator, VppCreate(name="PV and storage"))
    panel, battery = add_pv(session, owner), add_resource(session, owner)
    energy = np.floor(pv_wh(SLOTS, weather(), np.random.default_rng(5))).astype(int)
    for member, watts in ((panel, 4 * energy), (battery, np.full(SLOTS, 3_000))):
        vpp_services.join(session, WALL, owner, vpp.id, member.id)
        session.add_all(
            TelemetrySample(resource_id=member.id, metric="output", at=FIRST + i * 900, value=w)
            for i, w in enumerate(watts.tolist())
        )
    session.flush()
    found = {}
    for target in ("vppGeneration", "vpp"):
        response = client.post(
            "/v1/energy/forecast", json=request(target, str(vpp.id)), headers=bearer(aggregator)
        )
        assert response.status_code == 201, response.text
        found[target] = session.get(StoredForecast, response.json()["forecastId"]).inputs
    assert found["vppGeneration"]["resources"] == [str(panel.id)]
    assert found["vppGeneration"]["history"] == energy.tolist()
    assert found["vpp"]["history"] == (energy + 750).tolist()  # the battery's 3 kW × 15 min


def test_a_vpp_demand_forecast_adds_the_members_output_back_to_their_meters(api):
    """What the homes consume beyond their members' output: a PV home's meter shows the load
    less the panel (exporting at noon), the panel's telemetry adds the panel back."""
    client, session, owner, _other, solar = api
    aggregator = add_aggregator(session)
    vpp = vpp_services.create_vpp(session, aggregator, VppCreate(name="demand VPP"))
    panel = add_pv(session, owner)  # behind meter:solar-1
    vpp_services.join(session, WALL, owner, vpp.id, panel.id)
    load = np.rint(household_wh(FIRST, SLOTS, weather(), np.random.default_rng(1))).astype(int)
    made = np.floor(pv_wh(SLOTS, weather(), np.random.default_rng(5))).astype(int)
    net = load - made
    session.add_all(
        MeterReading(
            meter_id=solar.meter_id,
            interval_start=FIRST + i * 900,
            import_wh=int(max(n, 0)),
            export_wh=int(max(-n, 0)),
            source="bulk",
        )
        for i, n in enumerate(net)
    )
    session.add_all(
        TelemetrySample(resource_id=panel.id, metric="output", at=FIRST + i * 900, value=4 * int(w))
        for i, w in enumerate(made)
    )
    session.flush()
    assert (net < 0).any(), "the panel should out-produce the home at some point"

    response = client.post(
        "/v1/energy/forecast", json=request("vppDemand", str(vpp.id)), headers=bearer(aggregator)
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["target"], body["quantity"]) == ("vppDemand", "consumptionWh")
    stored = session.get(StoredForecast, body["forecastId"])
    assert stored.target_kind == "vppDemand" and stored.inputs["meters"] == [solar.meter_id]
    assert stored.inputs["history"] == [int(v) for v in load]
    assert max(p["value"] for p in body["values"]) > 0
    owner_asks = client.post(
        "/v1/energy/forecast", json=request("vppDemand", str(vpp.id)), headers=bearer(owner)
    )
    assert owner_asks.status_code == 403


def test_an_area_forecast_sums_the_meters_behind_its_resources_for_aggregators(api):
    client, session, owner, _other, solar = api
    aggregator = add_aggregator(session)
    first = store_readings(session, solar.meter_id)
    add_pv(session, owner)  # behind meter:solar-1, in KR-SE-001
    response = client.post(
        "/v1/energy/forecast", json=request("area", "KR-SE-001"), headers=bearer(aggregator)
    )
    assert response.status_code == 201, response.text
    stored = session.get(StoredForecast, response.json()["forecastId"])
    assert stored.inputs["meters"] == [solar.meter_id]  # meter:house-1 has no resource there
    assert stored.inputs["history"] == [int(v) for v in first]
    assert response.json()["quantity"] == "netImportWh"
    empty = client.post(
        "/v1/energy/forecast", json=request("area", "KR-BS-002"), headers=bearer(aggregator)
    )
    assert empty.status_code == 404


def test_an_owner_forecasts_a_resource_from_its_telemetry(api):
    client, session, owner, other, _solar = api
    panel = add_pv(session, owner)
    energy = pv_wh(SLOTS, weather(), np.random.default_rng(9))
    session.add_all(
        TelemetrySample(
            resource_id=panel.id, metric="output", at=FIRST + i * 900, value=int(wh * 4)
        )
        for i, wh in enumerate(energy)
    )
    session.flush()
    mine = client.post(
        "/v1/energy/forecast",
        json=request("resource", str(panel.id), horizon=6),
        headers=bearer(owner),
    )
    assert mine.status_code == 201, mine.text
    assert len(mine.json()["values"]) == 24 and mine.json()["quantity"] == "outputWh"
    theirs = client.post(
        "/v1/energy/forecast", json=request("resource", str(panel.id)), headers=bearer(other)
    )
    assert theirs.status_code == 403
    bad = client.post(
        "/v1/energy/forecast", json=request("resource", "not-a-uuid"), headers=bearer(owner)
    )
    assert bad.status_code == 404

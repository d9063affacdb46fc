"""The energy API: single and bulk ingestion (JSON array, NDJSON), owner-only series."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlmodel import func, select

from backend.accounts.security import create_access_token
from backend.api.deps import get_db
from backend.core.config import PROJECT_ROOT, get_settings
from backend.main import create_app
from backend.meters.models import MeterReading
from backend.meters.schemas import ReadingIn
from backend.meters.validation import iso

NOW = (int(datetime.now(UTC).timestamp()) // 900) * 900


def bearer(account):
    return {
        "Authorization": f"Bearer {create_access_token(account.id, account.roles, get_settings())}"
    }


@pytest.fixture
def api(metered):
    session, owner, other, solar, house = metered
    app = create_app()
    app.dependency_overrides[get_db] = lambda: session
    return TestClient(app), session, owner, other, solar, house


def test_single_reading_accepted_then_duplicate(api):
    client, session, owner, *_ = api
    body = {
        "meterId": "meter:solar-1",
        "timestamp": iso(NOW - 900),
        "exportWh": 500,
        "importWh": 3,
        "voltage": 231.0,
        "powerFactor": 0.97,
        "quality": "high",
    }
    first = client.post("/v1/energy/readings", json=body, headers=bearer(owner))
    assert first.status_code == 200 and first.json()["accepted"] == 1
    again = client.post("/v1/energy/consumption", json=body, headers=bearer(owner))
    assert again.json()["duplicate"] == 1
    stored = session.exec(select(MeterReading)).one()
    assert (stored.export_wh, stored.voltage_v, stored.quality) == (500, 231.0, "high")


def test_single_rejected_reading_is_a_problem_with_reason(api):
    client, _, owner, *_ = api
    reply = client.post(
        "/v1/energy/readings",
        headers=bearer(owner),
        json={"meterId": "meter:solar-1", "timestamp": iso(NOW + 3600), "exportWh": 1},
    )
    assert reply.status_code == 422
    problem = reply.json()
    assert problem["type"].endswith("/reading-rejected") and "future" in problem["detail"]


def test_readings_of_someone_elses_meter_are_rejected(api):
    client, session, _, other, *_ = api
    reply = client.post(
        "/v1/energy/readings/bulk",
        headers=bearer(other),
        json=[{"meterId": "meter:solar-1", "timestamp": iso(NOW - 900), "exportWh": 1}],
    )
    assert (
        reply.json()["rejected"] == 1
        and "another account" in reply.json()["rejections"][0]["reason"]
    )
    assert session.exec(select(func.count()).select_from(MeterReading)).one() == 0


def test_bulk_json_array_of_10k(api):
    client, session, owner, _, solar, house = api
    readings = []
    for i in range(5_000):
        start = NOW - 900 * (i + 1)
        readings.append(
            {
                "meterId": solar.meter_id,
                "timestamp": iso(start),
                "exportWh": i % 2_500,
                "importWh": 1,
            }
        )
        readings.append({"meterId": house.meter_id, "timestamp": iso(start), "importWh": 300})
    readings[17]["exportWh"] = -5
    reply = client.post(
        "/v1/energy/readings/bulk",
        content=orjson.dumps(readings),
        headers={**bearer(owner), "content-type": "application/json"},
    )
    result = reply.json()
    assert (result["received"], result["accepted"], result["rejected"]) == (10_000, 9_999, 1)
    assert result["rejections"][0]["index"] == 17
    assert session.exec(select(func.count()).select_from(MeterReading)).one() == 9_999


def test_bulk_ndjson_with_a_truncated_line(api):
    client, _session, owner, *_ = api
    lines = [
        json.dumps({"meterId": "meter:solar-1", "timestamp": iso(NOW - 900 * k), "exportWh": k})
        for k in (1, 2, 3)
    ]
    lines[1] = lines[1][:25]  # truncated JSON
    reply = client.post(
        "/v1/energy/readings/bulk",
        content="\n".join(lines) + "\n",
        headers={**bearer(owner), "content-type": "application/x-ndjson"},
    )
    result = reply.json()
    assert (result["accepted"], result["rejected"]) == (2, 1)
    assert (
        result["rejections"][0]["index"] == 1
        and "invalid JSON" in result["rejections"][0]["reason"]
    )


def test_bulk_truncated_json_array_is_a_problem(api):
    client, _, owner, *_ = api
    reply = client.post(
        "/v1/energy/readings/bulk",
        content=b'[{"meterId": "meter:solar-1", "timest',
        headers={**bearer(owner), "content-type": "application/json"},
    )
    assert reply.status_code == 422 and reply.json()["type"].endswith("/readings-malformed")


def test_generation_series_hourly_and_owner_only(api):
    client, _, owner, other, solar, _ = api
    hour = NOW // 3600 * 3600 - 3600
    readings = [
        {
            "meterId": solar.meter_id,
            "timestamp": iso(hour + 900 * q),
            "exportWh": 100 * (q + 1),
            "importWh": 1,
        }
        for q in range(4)
    ]
    client.post("/v1/energy/readings/bulk", json=readings, headers=bearer(owner))
    params = {"meterId": "meter:solar-1", "start": iso(hour), "end": iso(hour + 3600)}
    hourly = client.get("/v1/energy/generation", params=params, headers=bearer(owner)).json()
    assert [(p["wh"], p["intervals"]) for p in hourly["points"]] == [(1000, 4)]
    quarter = client.get(
        "/v1/energy/generation", params={**params, "aggregation": "15min"}, headers=bearer(owner)
    ).json()
    assert [p["wh"] for p in quarter["points"]] == [100, 200, 300, 400]
    consumption = client.get("/v1/energy/consumption", params=params, headers=bearer(owner)).json()
    assert consumption["points"][0]["wh"] == 4
    denied = client.get("/v1/energy/generation", params=params, headers=bearer(other))
    assert denied.status_code == 403 and denied.json()["type"].endswith("/meter-access-denied")
    assert client.get("/v1/energy/generation", params=params).status_code == 401


def test_published_json_schema_matches_the_model():
    published = json.loads(
        (PROJECT_ROOT / "backend" / "meters" / "reading.schema.json").read_text()
    )
    assert published["properties"] == ReadingIn.model_json_schema()["properties"]
    assert "ReadingIn" in json.dumps(create_app().openapi()["components"]["schemas"])


def test_the_last_reading_of_an_interval_wins_on_every_rest_path(api):
    """Single readings one after another, a plain JSON array (typed decoding) and NDJSON with a
    kWh reading (the general way): the later reading of an interval wins, and the bulk answer
    names the earlier one superseded."""
    client, session, owner, *_ = api

    def stored(start: int) -> int | None:
        return session.exec(
            select(MeterReading.export_wh).where(MeterReading.interval_start == start)
        ).one()

    single = {"meterId": "meter:solar-1", "timestamp": iso(NOW - 900), "exportWh": 5}
    first = client.post("/v1/energy/readings", json=single, headers=bearer(owner)).json()
    second = client.post(
        "/v1/energy/readings", json={**single, "exportWh": 6}, headers=bearer(owner)
    ).json()
    assert (first["accepted"], second["corrected"], second["superseded"]) == (1, 1, 0)
    assert stored(NOW - 900) == 6

    plain = [
        {"meterId": "meter:solar-1", "timestamp": iso(NOW - 1800), "exportWh": wh} for wh in (7, 8)
    ]
    result = client.post("/v1/energy/readings/bulk", json=plain, headers=bearer(owner)).json()
    assert (result["accepted"], result["corrected"], result["superseded"]) == (1, 1, 1)
    assert [(s["index"], s["by"]) for s in result["supersededReadings"]] == [(0, 1)]
    assert result["supersededReadings"][0]["meterId"] == "meter:solar-1"
    assert stored(NOW - 1800) == 8

    lines = [
        {
            "meterId": "meter:solar-1",
            "timestamp": iso(NOW - 2700),
            "exportWh": 0.009,
            "unit": "kWh",
        },
        {"meterId": "meter:solar-1", "timestamp": iso(NOW - 3600), "exportWh": 1},
        {"meterId": "meter:solar-1", "timestamp": iso(NOW - 2700), "exportWh": 10},
    ]
    result = client.post(
        "/v1/energy/readings/bulk",
        content="\n".join(json.dumps(line) for line in lines),
        headers={**bearer(owner), "content-type": "application/x-ndjson"},
    ).json()
    assert (result["accepted"], result["corrected"], result["rejected"]) == (2, 1, 0)
    assert [(s["index"], s["by"]) for s in result["supersededReadings"]] == [(0, 2)]
    assert stored(NOW - 2700) == 10

"""Poison on the REST ingestion routes: whatever the body, `POST /v1/energy/readings` and
`/v1/energy/readings/bulk` answer 200 or a 4xx problem, never a 500 (the bulk route answered
500 to a reading whose `unit` is a list)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.accounts.security import create_access_token
from backend.api.deps import get_db
from backend.core.config import Settings, get_settings
from backend.main import create_app
from backend.meters.validation import iso
from tests.fixtures.garbage import fixed, readings
from tests.fixtures.meters import NOW

ROUTES = ("/v1/energy/readings", "/v1/energy/readings/bulk")
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def api(metered, tmp_path):
    session, owner, *_ = metered
    config = Settings(_env_file=None, data_dir=tmp_path, rate_limit_per_minute=10**6)
    app = create_app()
    app.dependency_overrides[get_db] = lambda: session
    app.dependency_overrides[get_settings] = lambda: config
    token = create_access_token(owner.id, owner.roles, config)
    return TestClient(app), {"Authorization": f"Bearer {token}"}


def post(api, route: str, body: bytes, content_type: str = "application/json"):
    client, headers = api
    return client.post(route, content=body, headers={**headers, "Content-Type": content_type})


def assert_handled(reply) -> None:
    """200, or a 4xx RFC 9457 problem."""
    assert reply.status_code < 500, f"{reply.status_code}: {reply.text[:300]}"
    if reply.status_code >= 400:
        assert reply.headers["content-type"].startswith("application/problem+json"), reply.text
        assert reply.json()["status"] == reply.status_code


def test_the_issue_reading_is_a_problem_on_both_routes(api):
    reading = {"meterId": "meter:solar-1", "timestamp": iso(NOW), "exportWh": 5, "unit": ["Wh"]}
    single = post(api, ROUTES[0], json.dumps(reading).encode())
    assert single.status_code == 422
    bulk = post(api, ROUTES[1], json.dumps([reading]).encode())
    assert bulk.status_code == 200
    assert bulk.json()["rejections"][0]["reason"] == "unit must be Wh or kWh, got list"


@pytest.mark.parametrize("route", ROUTES)
def test_hand_picked_garbage_is_answered(api, route):
    """The MQTT fuzz cases, as a body and (bulk) inside an array and as NDJSON lines."""
    for case in fixed(iso(NOW - 900)):
        reading = case.replace(b'{"timestamp"', b'{"meterId": "meter:solar-1", "timestamp"', 1)
        for body, content_type in (
            (case, "application/json"),
            (reading, "application/json"),
            (b"[" + reading + b"]", "application/json"),
            (reading + b"\n" + case, "application/x-ndjson"),
        ):
            assert_handled(post(api, route, body, content_type))


@pytest.mark.parametrize("route", ROUTES)
@FUZZ
@given(reading=readings)
def test_generated_readings_are_answered(api, route, reading):
    body = [reading] if route.endswith("bulk") else reading
    assert_handled(post(api, route, json.dumps(body).encode()))  # NaN/Infinity as tokens


@pytest.mark.parametrize("route", ROUTES)
@FUZZ
@given(
    body=st.binary(max_size=300),
    content_type=st.sampled_from(
        ["application/json", "application/x-ndjson", "text/plain", "application/jsonl"]
    ),
)
def test_generated_bytes_are_answered(api, route, body, content_type):
    assert_handled(post(api, route, body, content_type))

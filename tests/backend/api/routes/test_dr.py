"""The `/v1/dr` API: operators define programs and call events, owners enrol and opt out,
bad input answered with RFC 9457 problems."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from backend.api.deps import get_db
from backend.main import create_app
from tests.backend.api.routes.test_meters import bearer
from tests.fixtures.dr import add_operator, program_body


@pytest.fixture
def api(metered):
    session, owner, other, *_ = metered
    app = create_app()
    app.dependency_overrides[get_db] = lambda: session
    return TestClient(app), session, owner, other, add_operator(session)


def next_boundary(ahead_s: int, length_s: int = 3_600) -> int:
    """A 15-minute boundary at least `ahead_s` from now whose event of `length_s` stays within
    one UTC day (the next midnight when it would cross)."""
    start = (int(time.time()) + ahead_s) // 900 * 900 + 900
    if start // 86_400 != (start + length_s - 1) // 86_400:
        start = (start // 86_400 + 1) * 86_400
    return start


def test_program_enrolment_event_and_opt_out(api):
    client, _session, owner, other, operator = api
    denied = client.post("/v1/dr/programs", json=program_body(), headers=bearer(owner))
    assert denied.status_code == 403
    created = client.post("/v1/dr/programs", json=program_body(), headers=bearer(operator))
    assert created.status_code == 201, created.text
    program = created.json()
    assert (program["incentive_per_kwh"], program["events_called"]) == ("300", 0)

    enrolled = client.post(
        f"/v1/dr/programs/{program['id']}/enrolments",
        json={"meter": "meter:house-1", "committed_w": 2_000},
        headers=bearer(owner),
    )
    assert enrolled.status_code == 201, enrolled.text
    enrolment_id = enrolled.json()["id"]
    twice = client.post(
        f"/v1/dr/programs/{program['id']}/enrolments",
        json={"meter": "meter:house-1", "committed_w": 1},
        headers=bearer(owner),
    )
    assert twice.status_code == 409 and twice.json()["type"].endswith("/dr-already-enrolled")

    start = next_boundary(2 * 3_600)
    called = client.post(
        "/v1/dr/events",
        json={
            "program_id": program["id"],
            "start": start,
            "end": start + 3_600,
            "signal_type": "LOAD_DISPATCH",
            "signal_value": 2_000,
        },
        headers=bearer(operator),
    )
    assert called.status_code == 201, called.text
    event = called.json()
    assert [p["committed_w"] for p in event["participants"]] == [2_000]

    stranger = client.post(
        f"/v1/dr/events/{event['id']}/opt-outs",
        json={"enrolment_id": enrolment_id},
        headers=bearer(other),
    )
    assert stranger.status_code == 403
    opted = client.post(
        f"/v1/dr/events/{event['id']}/opt-outs",
        json={"enrolment_id": enrolment_id, "reason": "away"},
        headers=bearer(owner),
    )
    assert opted.status_code == 200 and opted.json()["opt_out_reason"] == "away"
    listed = client.get(
        "/v1/dr/events", params={"program_id": program["id"]}, headers=bearer(owner)
    )
    assert listed.json()[0]["participants"][0]["opted_out_at"] is not None


def test_bad_input_is_a_problem(api):
    client, _session, owner, _other, operator = api
    program = client.post("/v1/dr/programs", json=program_body(), headers=bearer(operator)).json()
    misaligned = client.post(
        "/v1/dr/events",
        json={
            "program_id": program["id"],
            "start": next_boundary(7_200) + 60,
            "end": next_boundary(7_200) + 3_600,
        },
        headers=bearer(operator),
    )
    assert misaligned.status_code == 422
    assert misaligned.headers["content-type"].startswith("application/problem+json")
    assert misaligned.json()["type"].endswith("/dr-event-invalid")
    both = client.post(
        f"/v1/dr/programs/{program['id']}/enrolments",
        json={"meter": "meter:house-1", "resource_id": None, "committed_w": -5},
        headers=bearer(owner),
    )
    assert both.status_code == 422
    missing = client.get(
        "/v1/dr/programs/00000000-0000-0000-0000-000000000000", headers=bearer(owner)
    )
    assert missing.status_code == 404 and missing.json()["type"].endswith("/dr-program-not-found")


def test_event_performance_route(api):
    client, _session, owner, other, operator = api
    program = client.post("/v1/dr/programs", json=program_body(), headers=bearer(operator)).json()
    client.post(
        f"/v1/dr/programs/{program['id']}/enrolments",
        json={"meter": "meter:house-1", "committed_w": 2_000},
        headers=bearer(owner),
    )
    start = next_boundary(2 * 3_600)
    event = client.post(
        "/v1/dr/events",
        json={"program_id": program["id"], "start": start, "end": start + 900},
        headers=bearer(operator),
    ).json()
    seen = client.get(f"/v1/dr/events/{event['id']}/performance", headers=bearer(owner))
    assert seen.status_code == 200, seen.text
    (mine,) = seen.json()["participants"]
    assert (mine["status"], mine["incentive"], mine["penalty"]) == ("no_baseline", "0", "0")
    hidden = client.get(f"/v1/dr/events/{event['id']}/performance", headers=bearer(other))
    assert hidden.status_code == 403 and hidden.json()["type"].endswith("/dr-access-denied")

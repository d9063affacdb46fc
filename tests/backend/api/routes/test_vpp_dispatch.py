"""The dispatch routes of `/v1/vpp`: the aggregator sends a schedule or a setpoint, reads the
commands' acknowledgement state (late ones included) and each resource's adherence; owners
see their own resources, others nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from backend.api.deps import get_db
from backend.core.config import Settings
from backend.main import create_app
from backend.resources.models import TelemetrySample
from backend.vpp import downlink
from backend.vpp.models import DispatchCommand
from tests.fixtures.resources import add_aggregator
from tests.fixtures.vpp import SLOT, bearer, stored_schedule, vpp_of_batteries


@pytest.fixture
def api(metered):
    session, owner, other, *_ = metered
    app = create_app()
    app.dependency_overrides[get_db] = lambda: session
    aggregator = add_aggregator(session)
    vpp, batteries = vpp_of_batteries(session, owner, aggregator)
    return TestClient(app), session, owner, other, aggregator, vpp, batteries


def test_the_aggregator_dispatches_and_sees_late_acknowledgements(api):
    client, session, owner, other, aggregator, vpp, batteries = api
    start = (int(time.time()) // SLOT - 2) * SLOT
    schedule = stored_schedule(session, vpp, [(b, [1_000] * 96) for b in batteries], start)
    url = f"/v1/vpp/{vpp.id}/schedule/{schedule.id}/dispatch"
    refused = client.post(url, headers=bearer(owner))
    assert refused.status_code == 403 and refused.json()["required_role"] == "aggregator"
    sent = client.post(url, headers=bearer(aggregator))
    assert sent.status_code == 202, sent.text
    commands = sent.json()["commands"]
    assert [c["type"] for c in commands] == ["config", "schedule"] * 2
    assert all(c["state"] == "pending" for c in commands)
    assert client.post(url, headers=bearer(aggregator)).json()["commands"] == []

    setpoint = client.post(
        f"/v1/vpp/{vpp.id}/resources/{batteries[0].id}/setpoint",
        json={"powerW": 9_000, "until": (datetime.now(UTC) + timedelta(hours=1)).isoformat()},
        headers=bearer(aggregator),
    )
    assert setpoint.status_code == 422 and setpoint.json()["max_w"] == 5_000

    # the broker took them; one device answered, the other never did
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    for row in session.exec(select(DispatchCommand)).all():
        downlink.mark_sent(row, Settings(_env_file=None), long_ago)
        if row.resource_id == batteries[0].id:
            row.state, row.acked_at, row.ack_result = "acked", long_ago, "accepted"
    session.flush()
    downlink.mark_late(session, datetime.now(UTC))
    session.expire_all()

    status = client.get(f"/v1/vpp/{vpp.id}/dispatch", headers=bearer(aggregator)).json()
    assert status["counts"] == {"pending": 0, "sent": 0, "acked": 2, "late": 2, "failed": 0}
    late = client.get(
        f"/v1/vpp/{vpp.id}/dispatch",
        params={"state": "late"},
        headers=bearer(aggregator),
    ).json()["commands"]
    assert {(c["resourceId"], c["ackedAt"]) for c in late} == {(str(batteries[1].id), None)}
    assert all(c["ackBy"] < datetime.now(UTC).isoformat() for c in late)
    mine = client.get(f"/v1/vpp/{vpp.id}/dispatch", headers=bearer(owner))
    assert mine.status_code == 200 and len(mine.json()["commands"]) == 4
    denied = client.get(f"/v1/vpp/{vpp.id}/dispatch", headers=bearer(other))
    assert denied.status_code == 403 and denied.json()["type"].endswith("/vpp-access-denied")


def test_adherence_compares_telemetry_with_the_schedule(api):
    client, session, owner, other, aggregator, vpp, batteries = api
    start = (int(time.time()) // SLOT - 2) * SLOT  # slots 0 and 1 are over
    schedule = stored_schedule(
        session, vpp, [(batteries[0], [2_000] * 96), (batteries[1], [-4_000] * 96)], start
    )
    samples = [
        (batteries[0], start + 60, 2_000),
        (batteries[0], start + 500, 2_400),  # slot 0: mean 2.2 kW → 550 Wh, within 125 Wh
        (batteries[0], start + SLOT + 10, 0),  # slot 1: 0 Wh, 500 Wh short
        (batteries[1], start + SLOT + 10, -4_000),  # slot 0 unreported
        (batteries[1], start + 4 * SLOT, -4_000),  # a slot not over yet: left out
    ]
    for resource, at, value in samples:
        session.add(TelemetrySample(resource_id=resource.id, metric="output", at=at, value=value))
    session.flush()
    url = f"/v1/vpp/{vpp.id}/schedule/{schedule.id}/adherence"
    reply = client.get(url, headers=bearer(aggregator))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["endedSlots"], body["tolerance"], body["slotSeconds"]) == (2, 0.1, 900)
    first, second = body["resources"]
    assert [
        (s["plannedWh"], s["actualWh"], s["deviationWh"], s["followed"]) for s in first["slots"]
    ] == [(500, 550, 50, True), (500, 0, -500, False)]
    assert (first["followedSlots"], first["measuredSlots"], first["absDeviationWh"]) == (1, 2, 550)
    assert [(s["actualWh"], s["followed"]) for s in second["slots"]] == [
        (None, None),
        (-1_000, True),
    ]
    assert client.get(url, headers=bearer(owner)).status_code == 200
    assert client.get(url, headers=bearer(other)).status_code == 403
    missing = client.get(f"/v1/vpp/{vpp.id}/schedule/{vpp.id}/adherence", headers=bearer(owner))
    assert missing.status_code == 404 and missing.json()["type"].endswith("/vpp-schedule-not-found")

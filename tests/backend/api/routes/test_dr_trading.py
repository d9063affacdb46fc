"""`/v1/dr` beyond programs: a called event reaches the participants' VENs (VTN) and VPPs,
aggregators offer DR capacity that an operator buys, and the settlement view."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from backend.api.deps import get_db
from backend.dr.models import DrEvent, DrSettlement, DrSettlementStatus
from backend.main import create_app
from backend.meters.models import MeterKind
from backend.meters.schemas import MeterCreate
from backend.meters.services import register_meter
from backend.openadr.models import EventDelivery, VtnEvent
from backend.openadr.services import add_ven
from backend.vpp.schemas import VppCreate
from backend.vpp.services import create_vpp, join
from tests.backend.api.routes.test_meters import bearer
from tests.fixtures.dr import add_operator, program_body
from tests.fixtures.resources import WALL, add_aggregator, add_resource


@pytest.fixture
def api(metered):
    session, owner, other, *_ = metered
    app = create_app()
    app.dependency_overrides[get_db] = lambda: session
    return TestClient(app), session, owner, other, add_operator(session)


def window(ahead_s: int = 2 * 3_600, length_s: int = 3_600) -> tuple[int, int]:
    """A future window on 15-minute boundaries within one UTC day."""
    start = (int(time.time()) + ahead_s) // 900 * 900 + 900
    if start // 86_400 != (start + length_s - 1) // 86_400:
        start = (start // 86_400 + 1) * 86_400
    return start, start + length_s


def test_called_event_goes_to_vens_and_vpps(api):
    client, session, owner, _other, operator = api
    battery = add_resource(session, owner)  # behind meter:solar-1
    aggregator = add_aggregator(session)
    vpp = create_vpp(session, aggregator, VppCreate(name="street vpp"))
    join(session, WALL, owner, vpp.id, battery.id)
    house = next(m for m in owner_meters(client, owner) if m["name"] == "meter:house-1")
    add_ven(
        session,
        ven_id="ven-house",
        ven_name="house ven",
        account_id=owner.id,
        cert_fingerprint="ab" * 32,
        meter_ids=[house["meter_id"]],
    )
    add_ven(  # reports for no participating meter: not told
        session,
        ven_id="ven-idle",
        ven_name="idle ven",
        account_id=owner.id,
        cert_fingerprint="cd" * 32,
    )
    program = client.post(
        "/v1/dr/programs", json=program_body(notification_lead_s=0), headers=bearer(operator)
    ).json()
    for body in (
        {"meter": "meter:house-1", "committed_w": 2_000},
        {"resource_id": str(battery.id), "committed_w": 3_000},
    ):
        enrolled = client.post(
            f"/v1/dr/programs/{program['id']}/enrolments", json=body, headers=bearer(owner)
        )
        assert enrolled.status_code == 201, enrolled.text
    start, end = window()
    called = client.post(
        "/v1/dr/events",
        json={
            "program_id": program["id"],
            "start": start,
            "end": end,
            "signal_type": "LOAD_DISPATCH",
            "signal_value": 5_000,
        },
        headers=bearer(operator),
    )
    assert called.status_code == 201, called.text
    event_id = called.json()["id"]

    (vtn_event,) = session.exec(select(VtnEvent).where(VtnEvent.reference == event_id)).all()
    assert vtn_event.signal_name == "LOAD_DISPATCH"
    assert [i["start"] for i in vtn_event.intervals] == list(range(start, end, 900))
    assert {i["value"] for i in vtn_event.intervals} == {5_000}
    deliveries = session.exec(
        select(EventDelivery.ven_id).where(EventDelivery.event_id == vtn_event.id)
    ).all()
    assert deliveries == ["ven-house"]

    told = client.get(f"/v1/dr/events/{event_id}/vpp-notifications", headers=bearer(owner))
    assert told.status_code == 200
    assert [
        (n["vpp_id"], n["committed_w"], n["resources"], n["start"], n["end"]) for n in told.json()
    ] == [(str(vpp.id), 3_000, 1, start, end)]


def owner_meters(client: TestClient, owner) -> list[dict]:
    found = client.get("/v1/meters", headers=bearer(owner))
    assert found.status_code == 200, found.text
    return found.json()


def test_aggregator_offers_capacity_and_the_operator_buys_it(api):
    client, session, owner, _other, operator = api
    aggregator = add_aggregator(session)
    register_meter(
        session,
        aggregator,
        MeterCreate(name="meter:aggregate-1", kind=MeterKind.IMPORT, capacity_w=50_000),
    )
    start, end = window()
    offer_body = {
        "meter": "meter:aggregate-1",
        "start": start,
        "end": end,
        "capacity_w": 4_000,
        "price_per_kwh": 250_000,
        "penalty_per_kwh": 100_000,
    }
    not_aggregator = client.post("/v1/dr/offers", json=offer_body, headers=bearer(owner))
    assert not_aggregator.status_code == 403
    foreign = client.post(
        "/v1/dr/offers", json=offer_body | {"meter": "meter:house-1"}, headers=bearer(aggregator)
    )
    assert foreign.status_code in (403, 404)  # not its meter
    bad = client.post("/v1/dr/offers", json=offer_body | {"end": start}, headers=bearer(aggregator))
    assert bad.status_code == 422 and bad.json()["type"].endswith("/dr-offer-invalid")
    offered = client.post("/v1/dr/offers", json=offer_body, headers=bearer(aggregator))
    assert offered.status_code == 201, offered.text
    offer = offered.json()
    assert (offer["status"], offer["price_per_kwh"], offer["capacity_w"]) == (
        "open",
        "250000",
        4_000,
    )
    listed = client.get("/v1/dr/offers?status=open", headers=bearer(owner)).json()
    assert [o["id"] for o in listed] == [offer["id"]]
    not_operator = client.post(f"/v1/dr/offers/{offer['id']}/accept", headers=bearer(owner))
    assert not_operator.status_code == 403
    accepted = client.post(f"/v1/dr/offers/{offer['id']}/accept", headers=bearer(operator))
    assert accepted.status_code == 201, accepted.text
    event = accepted.json()
    assert (event["start"], event["end"], event["signal_type"], event["signal_value"]) == (
        start,
        end,
        "LOAD_DISPATCH",
        "4000",
    )
    assert [(p["account_id"], p["committed_w"]) for p in event["participants"]] == [
        (str(aggregator.id), 4_000)
    ]
    program = client.get(f"/v1/dr/programs/{event['program_id']}", headers=bearer(owner)).json()
    assert (program["operator_id"], program["incentive_per_kwh"], program["penalty_per_kwh"]) == (
        str(operator.id),
        "250000",
        "100000",
    )
    assert (program["program_type"], program["max_events"], program["events_called"]) == (
        "economic",
        1,
        1,
    )
    again = client.post(f"/v1/dr/offers/{offer['id']}/accept", headers=bearer(operator))
    assert again.status_code == 409 and again.json()["type"].endswith("/dr-offer-not-open")
    bought = client.get("/v1/dr/offers", headers=bearer(owner)).json()
    assert [(o["status"], o["event_id"]) for o in bought] == [("accepted", event["id"])]
    withdrawn = client.delete(f"/v1/dr/offers/{offer['id']}", headers=bearer(aggregator))
    assert withdrawn.status_code == 409


def test_settlement_view_shows_each_participant_to_whom_it_may(api):
    client, session, owner, other, operator = api
    program = client.post(
        "/v1/dr/programs", json=program_body(notification_lead_s=0), headers=bearer(operator)
    ).json()
    client.post(
        f"/v1/dr/programs/{program['id']}/enrolments",
        json={"meter": "meter:house-1", "committed_w": 2_000},
        headers=bearer(owner),
    )
    start, end = window()
    event_id = client.post(
        "/v1/dr/events",
        json={"program_id": program["id"], "start": start, "end": end},
        headers=bearer(operator),
    ).json()["id"]
    waiting = client.get(f"/v1/dr/events/{event_id}/settlement", headers=bearer(operator))
    assert waiting.status_code == 200 and waiting.json() == {
        "event_id": event_id,
        "state": "waiting",
        "participants": [],
    }
    event = session.get(DrEvent, event_id)
    assert event is not None
    session.add(
        DrSettlement(
            event_id=event.id,
            account_id=owner.id,
            address=owner.address,
            credited_wh=2_400,
            shortfall_wh=0,
            incentive=720,
            penalty=0,
            status=DrSettlementStatus.SETTLED,
            settled_tx="0x" + "12" * 32,
        )
    )
    session.flush()
    mine = client.get(f"/v1/dr/events/{event_id}/settlement", headers=bearer(owner)).json()
    assert mine["state"] == "settled"
    assert [(p["incentive"], p["penalty"], p["tx_hash"]) for p in mine["participants"]] == [
        ("720", "0", "0x" + "12" * 32)
    ]
    denied = client.get(f"/v1/dr/events/{event_id}/settlement", headers=bearer(other))
    assert denied.status_code == 403

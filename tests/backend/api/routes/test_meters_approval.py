"""Meter approval through the API: owner registers (pending), registrar approves or suspends;
signed and provider-posted readings are verified, and the responses say so."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from backend.accounts.models import Account
from backend.accounts.security import create_access_token
from backend.api.deps import get_db
from backend.core.config import get_settings
from backend.main import create_app
from backend.meters.models import MeterReading
from backend.meters.trust import ReadingDomain
from backend.meters.validation import iso
from tests.fixtures.meters import TEST_CHAIN_ID, TEST_REGISTRY, meter_key, signed

NOW = (int(datetime.now(UTC).timestamp()) // 900) * 900
DOMAIN = ReadingDomain(TEST_CHAIN_ID, TEST_REGISTRY)


def bearer(account, settings):
    return {"Authorization": f"Bearer {create_access_token(account.id, account.roles, settings)}"}


@pytest.fixture
def api(metered, meter_settings):
    session, owner, other, _solar, _house = metered
    registrar = Account(address="0x" + "ee" * 20, roles=["participant", "registrar"])
    provider = Account(address="0x" + "d0" * 20, roles=["participant", "meter_data_provider"])
    session.add_all([registrar, provider])
    session.commit()
    app = create_app()
    app.dependency_overrides[get_db] = lambda: session
    app.dependency_overrides[get_settings] = lambda: meter_settings
    people = {"owner": owner, "other": other, "registrar": registrar, "provider": provider}
    return TestClient(app), session, {k: bearer(v, meter_settings) for k, v in people.items()}


def register(client, headers, key: str | None):
    body = {"name": "meter:roof", "capacity_w": 8_000}
    reply = client.post(
        "/v1/meters", json=body | ({"signing_key": key} if key else {}), headers=headers
    )
    assert reply.status_code == 201, reply.text
    return reply.json()


def test_register_pending_then_registrar_approves_and_signed_readings_verify(api):
    client, _session, who = api
    key = meter_key("roof")
    meter = register(client, who["owner"], key.address.lower())
    assert (meter["status"], meter["signing_key"]) == ("pending", key.address)
    path = f"/v1/meters/{meter['meter_id']}"

    body = signed(
        {"meterId": meter["meter_id"], "timestamp": iso(NOW - 900), "exportWh": 600}, key, DOMAIN
    )
    early = client.post("/v1/energy/readings", json=body, headers=who["owner"])
    assert early.json()["verified"] == 0  # pending: the signature counts for nothing yet

    queue = client.get("/v1/meters", params={"status": "pending"}, headers=who["registrar"]).json()
    assert meter["meter_id"] in {m["meter_id"] for m in queue}
    mine = client.get("/v1/meters", headers=who["other"]).json()
    assert meter["meter_id"] not in {m["meter_id"] for m in mine}  # not the other owner's

    assert (
        client.post(
            f"{path}/approval", json={"capacity_w": 4_000}, headers=who["owner"]
        ).status_code
        == 403
    )
    approved = client.post(f"{path}/approval", json={"capacity_w": 4_000}, headers=who["registrar"])
    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["approved_capacity_w"]) == (
        "approved",
        4_000,
    )
    shown = client.get(path, headers=who["owner"]).json()
    assert (shown["status"], shown["signing_key"]) == ("approved", key.address)
    assert client.get(path, headers=who["other"]).status_code == 403

    now_signed = client.post("/v1/energy/readings", json=body, headers=who["owner"])
    assert (now_signed.json()["accepted"], now_signed.json()["verified"]) == (1, 1)
    too_much = signed(
        {"meterId": meter["meter_id"], "timestamp": iso(NOW - 1800), "exportWh": 1_001}, key, DOMAIN
    )
    refused = client.post("/v1/energy/readings", json=too_much, headers=who["owner"])
    assert refused.status_code == 422
    assert "approved capacity 4000 W" in refused.json()["detail"]

    unsigned = {"meterId": meter["meter_id"], "timestamp": iso(NOW - 2700), "exportWh": 900}
    client.post("/v1/energy/readings", json=unsigned, headers=who["owner"])
    series = client.get(
        "/v1/energy/generation",
        params={"meterId": meter["meter_id"], "aggregation": "15min", "start": iso(NOW - 3600)},
        headers=who["owner"],
    ).json()
    by_start = {p["start"][:19]: p for p in series["points"]}
    assert (by_start[iso(NOW - 900)[:19]]["verified_wh"], by_start[iso(NOW - 900)[:19]]["wh"]) == (
        600,
        600,
    )
    assert (
        by_start[iso(NOW - 2700)[:19]]["verified_wh"],
        by_start[iso(NOW - 2700)[:19]]["wh"],
    ) == (0, 900)

    suspended = client.post(f"{path}/suspension", headers=who["registrar"])
    assert suspended.json()["status"] == "suspended"
    again = client.post(f"{path}/suspension", headers=who["registrar"])
    assert again.status_code == 409 and again.json()["type"].endswith("/meter-not-approved")


def test_approval_needs_a_signing_key(api):
    client, _, who = api
    meter = register(client, who["owner"], None)
    path = f"/v1/meters/{meter['meter_id']}/approval"
    reply = client.post(path, json={"capacity_w": 1_000}, headers=who["registrar"])
    assert reply.status_code == 422 and reply.json()["type"].endswith("/meter-signing-key-missing")
    rotated = meter_key("replacement")
    reply = client.post(
        path, json={"capacity_w": 1_000, "signing_key": rotated.address}, headers=who["registrar"]
    )
    assert reply.json()["signing_key"] == rotated.address


def test_a_metering_data_provider_posts_verified_readings_for_any_meter(api):
    client, session, who = api
    rows = [
        {"meterId": "meter:solar-1", "timestamp": iso(NOW - 900 * k), "exportWh": 100 + k}
        for k in (1, 2)
    ]
    body = b"\n".join(orjson.dumps(r) for r in rows)
    reply = client.post(
        "/v1/energy/readings/bulk",
        content=body,
        headers={**who["provider"], "content-type": "application/x-ndjson"},
    )
    assert (reply.json()["accepted"], reply.json()["verified"]) == (2, 2)
    stored = session.exec(select(MeterReading)).all()
    assert all(r.verified and r.signer == "0x" + "d0" * 20 for r in stored)
    # the owner's unsigned readings of the same intervals cannot replace them
    lie = client.post(
        "/v1/energy/readings/bulk",
        content=orjson.dumps([{**r, "exportWh": 2_000} for r in rows]),
        headers={**who["owner"], "content-type": "application/json"},
    ).json()
    assert (lie["rejected"], lie["corrected"]) == (2, 0)

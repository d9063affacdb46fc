"""Meter approval through the API on a devnet: owner registers (pending), a registrar approves
or suspends, on chain (`RECRegistry.meter`) and in the database; signed and provider-posted
readings are verified, and the responses say so."""

from __future__ import annotations

import time

import orjson
from sqlmodel import Session, select

from backend.accounts.models import Account
from backend.chain.transactions import transact
from backend.meters.models import Meter, MeterReading
from backend.meters.trust import reading_domain
from backend.meters.validation import iso
from tests.fixtures.api import register_and_login
from tests.fixtures.meters import meter_key, signed

PENDING, APPROVED, SUSPENDED = 0, 1, 2  # IRECRegistry.MeterStatus
ZERO_KEY = "0x" + "00" * 20


def people(chain_api) -> dict[str, dict]:
    """Bearer headers of an owner, another participant, a registrar and a metering data
    provider (roles granted by an admin out of band)."""
    client = chain_api.client
    who = {
        name: register_and_login(client, f"{name}@example.org")
        for name in ("owner", "other", "registrar", "provider")
    }
    with Session(chain_api.engine) as session:
        for name, role in (("registrar", "registrar"), ("provider", "meter_data_provider")):
            account = session.exec(
                select(Account).where(Account.email == f"{name}@example.org")
            ).one()
            account.roles = ["participant", role]
            session.add(account)
        session.commit()
    return who


def register(client, headers, key: str | None, name: str = "meter:roof") -> dict:
    body = {"name": name, "capacity_w": 8_000}
    reply = client.post(
        "/v1/meters", json=body | ({"signing_key": key} if key else {}), headers=headers
    )
    assert reply.status_code == 201, reply.text
    return reply.json()


def on_chain(chain_api, meter_id: str) -> tuple:
    """`RECRegistry.meter(meterId)`: (owner, status, capacity W, signing key)."""
    registry = chain_api.devnet.workload.c.registry
    return tuple(registry.functions.meter(bytes.fromhex(meter_id[2:])).call())


def now_slot() -> int:
    """The current 15-minute boundary (readings are judged by the wall clock)."""
    return int(time.time()) // 900 * 900


def test_registrar_approves_and_suspends_on_chain_and_signed_readings_verify(chain_api):
    client, who = chain_api.client, people(chain_api)
    domain = reading_domain(chain_api.settings)
    now = now_slot()
    key = meter_key("roof")
    meter = register(client, who["owner"], key.address.lower())
    assert (meter["status"], meter["signing_key"]) == ("pending", key.address)
    path = f"/v1/meters/{meter['meter_id']}"
    owner_address = client.get("/v1/auth/me", headers=who["owner"]).json()["address"]
    assert on_chain(chain_api, meter["meter_id"])[1:] == (PENDING, 0, ZERO_KEY)

    body = signed(
        {"meterId": meter["meter_id"], "timestamp": iso(now - 900), "exportWh": 600}, key, domain
    )
    early = client.post("/v1/energy/readings", json=body, headers=who["owner"])
    assert early.json()["verified"] == 0  # pending: the signature counts for nothing yet

    queue = client.get("/v1/meters", params={"status": "pending"}, headers=who["registrar"]).json()
    assert meter["meter_id"] in {m["meter_id"] for m in queue}
    mine = client.get("/v1/meters", headers=who["other"]).json()
    assert meter["meter_id"] not in {m["meter_id"] for m in mine}  # not the other owner's

    denied = client.post(f"{path}/approval", json={"capacity_w": 4_000}, headers=who["owner"])
    assert denied.status_code == 403
    approved = client.post(f"{path}/approval", json={"capacity_w": 4_000}, headers=who["registrar"])
    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["approved_capacity_w"]) == (
        "approved",
        4_000,
    )
    assert on_chain(chain_api, meter["meter_id"]) == (
        chain_api.devnet.w3.to_checksum_address(owner_address),
        APPROVED,
        4_000,
        key.address,
    )
    shown = client.get(path, headers=who["owner"]).json()
    assert (shown["status"], shown["signing_key"]) == ("approved", key.address)
    assert client.get(path, headers=who["other"]).status_code == 403

    # the same approval again sends no transaction
    height = chain_api.devnet.w3.eth.block_number
    again = client.post(f"{path}/approval", json={"capacity_w": 4_000}, headers=who["registrar"])
    assert again.status_code == 200 and chain_api.devnet.w3.eth.block_number == height

    now_signed = client.post("/v1/energy/readings", json=body, headers=who["owner"])
    assert (now_signed.json()["accepted"], now_signed.json()["verified"]) == (1, 1)
    registry = chain_api.devnet.workload.c.registry
    reading = (bytes.fromhex(meter["meter_id"][2:]), now - 900, 900, 0, 600)
    assert registry.functions.isValidReading(reading, body["signature"]).call()
    too_much = signed(
        {"meterId": meter["meter_id"], "timestamp": iso(now - 1800), "exportWh": 1_001}, key, domain
    )
    refused = client.post("/v1/energy/readings", json=too_much, headers=who["owner"])
    assert refused.status_code == 422
    assert "approved capacity 4000 W" in refused.json()["detail"]

    unsigned = {"meterId": meter["meter_id"], "timestamp": iso(now - 2700), "exportWh": 900}
    client.post("/v1/energy/readings", json=unsigned, headers=who["owner"])
    series = client.get(
        "/v1/energy/generation",
        params={"meterId": meter["meter_id"], "aggregation": "15min", "start": iso(now - 3600)},
        headers=who["owner"],
    ).json()
    by_start = {p["start"][:19]: p for p in series["points"]}
    assert (by_start[iso(now - 900)[:19]]["verified_wh"], by_start[iso(now - 900)[:19]]["wh"]) == (
        600,
        600,
    )
    assert (
        by_start[iso(now - 2700)[:19]]["verified_wh"],
        by_start[iso(now - 2700)[:19]]["wh"],
    ) == (0, 900)

    suspended = client.post(f"{path}/suspension", headers=who["registrar"])
    assert suspended.json()["status"] == "suspended"
    assert on_chain(chain_api, meter["meter_id"])[1] == SUSPENDED
    assert not registry.functions.isValidReading(reading, body["signature"]).call()
    again = client.post(f"{path}/suspension", headers=who["registrar"])
    assert again.status_code == 409 and again.json()["type"].endswith("/meter-not-approved")

    rotated = meter_key("roof-2")  # re-approval rotates the key, on chain too
    reapproved = client.post(
        f"{path}/approval",
        json={"capacity_w": 5_000, "signing_key": rotated.address},
        headers=who["registrar"],
    )
    assert reapproved.json()["status"] == "approved"
    assert on_chain(chain_api, meter["meter_id"])[1:] == (APPROVED, 5_000, rotated.address)


def test_a_reverted_approval_changes_nothing_and_a_chain_ahead_is_caught_up(chain_api):
    client, who = chain_api.client, people(chain_api)
    meter = register(client, who["owner"], None)
    path = f"/v1/meters/{meter['meter_id']}"
    missing = client.post(f"{path}/approval", json={"capacity_w": 1_000}, headers=who["registrar"])
    assert missing.status_code == 422
    assert missing.json()["type"].endswith("/meter-signing-key-missing")

    # the chain refuses a zero key: the database keeps the meter pending
    refused = client.post(
        f"{path}/approval",
        json={"capacity_w": 1_000, "signing_key": ZERO_KEY},
        headers=who["registrar"],
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("/contract/RECRegistryZeroSigningKey")
    with Session(chain_api.engine) as session:
        row = session.get(Meter, meter["meter_id"])
        assert (row.status, row.signing_key, row.approved_capacity_w) == ("pending", None, None)
    assert on_chain(chain_api, meter["meter_id"])[1] == PENDING

    key = meter_key("replacement")
    reply = client.post(
        f"{path}/approval",
        json={"capacity_w": 1_000, "signing_key": key.address},
        headers=who["registrar"],
    )
    assert reply.status_code == 200 and reply.json()["signing_key"] == key.address

    # suspended on chain but not here (a commit lost after the receipt): the retry sends
    # nothing and brings the database to the chain's state
    workload = chain_api.devnet.workload  # the registrar key outside the API (pending nonce)
    transact(
        chain_api.devnet.w3,
        workload.registrar,
        workload.c.registry.functions.suspendMeter(bytes.fromhex(meter["meter_id"][2:])),
    )
    height = chain_api.devnet.w3.eth.block_number
    caught_up = client.post(f"{path}/suspension", headers=who["registrar"])
    assert caught_up.status_code == 200 and caught_up.json()["status"] == "suspended"
    assert chain_api.devnet.w3.eth.block_number == height


def test_a_metering_data_provider_posts_verified_readings_for_any_meter(chain_api):
    client, who = chain_api.client, people(chain_api)
    now = now_slot()
    meter = register(client, who["owner"], None, name="meter:solar-1")
    rows = [
        {"meterId": meter["meter_id"], "timestamp": iso(now - 900 * k), "exportWh": 100 + k}
        for k in (1, 2)
    ]
    body = b"\n".join(orjson.dumps(r) for r in rows)
    reply = client.post(
        "/v1/energy/readings/bulk",
        content=body,
        headers={**who["provider"], "content-type": "application/x-ndjson"},
    )
    assert (reply.json()["accepted"], reply.json()["verified"]) == (2, 2)
    provider = client.get("/v1/auth/me", headers=who["provider"]).json()["address"]
    with Session(chain_api.engine) as session:
        stored = session.exec(select(MeterReading)).all()
    assert len(stored) == 2
    assert all(r.verified and r.signer.lower() == provider.lower() for r in stored)
    # the owner's unsigned readings of the same intervals cannot replace them
    lie = client.post(
        "/v1/energy/readings/bulk",
        content=orjson.dumps([{**r, "exportWh": 2_000} for r in rows]),
        headers={**who["owner"], "content-type": "application/json"},
    ).json()
    assert (lie["rejected"], lie["corrected"]) == (2, 0)

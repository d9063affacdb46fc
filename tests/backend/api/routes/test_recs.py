"""RECs through the API on a devnet: a custodial owner registers a device, a registrar
approves it, the issuer issues, the owner transfers and claims; history and claim proof."""

from __future__ import annotations

from sqlmodel import Session, select

from backend.accounts.models import Account
from backend.chain.transactions import send
from backend.market.orders import default_meter_id
from tests.fixtures.api import register_and_login, siwe_sign_in
from tests.fixtures.indexing import catch_up


def test_device_certificate_transfer_claim_and_proof(chain_api):
    client, devnet = chain_api.client, chain_api.devnet
    w3, workload = devnet.w3, devnet.workload
    owner = register_and_login(client, "owner@example.org")
    owner_address = client.get("/v1/auth/me", headers=owner).json()["address"]
    send(
        w3,
        workload.admin,
        {"to": w3.to_checksum_address(owner_address), "value": 10**18, "gas": 21_000},
    )
    registrar = register_and_login(client, "registrar@example.org")
    with Session(chain_api.engine) as session:  # role granted by an admin out of band
        account = session.exec(
            select(Account).where(Account.email == "registrar@example.org")
        ).one()
        account.roles = ["participant", "registrar"]
        session.add(account)
        session.commit()
    indexer = chain_api.indexer()
    meter = default_meter_id(owner_address)  # the registrar approves the owner's meter
    workload.tx(
        workload.registrar,
        workload.c.registry.functions.approveMeter(
            meter, 50_000, w3.to_checksum_address(owner_address)
        ),
    )

    registered = client.post(
        "/v1/recs/devices",
        headers=owner,
        json={"technology": "WIND_ONSHORE", "capacity_w": 50_000, "grid_area": "DE-50HZ"},
    )
    assert registered.status_code == 202, registered.text
    device_id = int(registered.json()["id"])
    # a participant cannot approve; the registrar can
    denied = client.post(f"/v1/recs/devices/{device_id}/approve", headers=owner)
    assert denied.status_code == 403
    approved = client.post(f"/v1/recs/devices/{device_id}/approve", headers=registrar)
    assert approved.status_code == 202 and approved.json()["tx_hash"].startswith("0x")
    again = client.post(f"/v1/recs/devices/{device_id}/approve", headers=registrar)
    assert again.status_code == 409
    assert again.json()["type"].endswith("/contract/RECRegistryInvalidStatusTransition")
    assert again.json()["arguments"]["deviceId"] == device_id

    hour = (workload.now() // 3600 - 5) * 3600
    receipt = workload.tx(
        workload.issuer,
        workload.c.registry.functions.issue(
            device_id,
            w3.to_checksum_address(owner_address),
            hour,
            hour + 3600,
            4_000,
            workload.evidence(meter, hour, 4_000),
        ),
    )
    cert_id = workload.c.registry.events.CertificateIssued().process_receipt(receipt)[0]["args"][
        "certId"
    ]

    buyer = workload.people[0].address
    moved = client.post(
        f"/v1/recs/certificates/{cert_id}/transfer",
        headers=owner,
        json={"to": buyer, "amount_wh": 1_000},
    )
    assert moved.status_code == 202, moved.text
    too_much = client.post(
        f"/v1/recs/certificates/{cert_id}/claim",
        headers=owner,
        json={
            "amount_wh": 10_000,
            "beneficiary": "ACME GmbH",
            "consumption_start": hour,
            "consumption_end": hour + 3600,
        },
    )
    assert too_much.status_code == 409 and too_much.json()["type"].endswith(
        "/contract/RECRegistryInsufficientBalance"
    )
    claimed = client.post(
        f"/v1/recs/certificates/{cert_id}/claim",
        headers=owner,
        json={
            "amount_wh": 2_000,
            "beneficiary": "ACME GmbH",
            "purpose": "scope2",
            "consumption_start": hour,
            "consumption_end": hour + 3600,
            "location": "DE",
        },
    )
    assert claimed.status_code == 202, claimed.text
    catch_up(indexer)

    device = client.get(f"/v1/recs/devices/{device_id}", headers=owner).json()
    assert device["status"] == "approved" and device["owner"] == owner_address
    listed = client.get(
        "/v1/recs/certificates",
        headers=owner,
        params={"technology": "WIND_ONSHORE", "holder": owner_address},
    ).json()["items"]
    assert [c["certificate_id"] for c in listed] == [cert_id]
    detail = client.get(f"/v1/recs/certificates/{cert_id}", headers=owner).json()
    assert [h["kind"] for h in detail["history"]] == ["issuance", "transfer", "claim"]
    assert detail["claimed_wh"] == "2000" and detail["holders"] == {
        owner_address: "1000",
        buyer.lower(): "1000",
    }
    assert detail["history"][2]["beneficiary"] == "ACME GmbH"

    proof = client.get(claimed.json()["poll"]).json()  # public: no credentials needed
    assert proof["tx_hash"] == claimed.json()["tx_hash"] and proof["amount_wh"] == "2000"
    chain_receipt = w3.eth.get_transaction_receipt(proof["tx_hash"])
    assert chain_receipt["blockNumber"] == proof["block_number"]
    assert "0x" + bytes(chain_receipt["blockHash"]).hex() == proof["block_hash"]
    log = next(entry for entry in chain_receipt["logs"] if entry["logIndex"] == proof["log_index"])
    assert log["address"].lower() == proof["contract"]
    assert "0x" + bytes(log["topics"][0]).hex() == "0x" + w3.keccak(
        text=proof["event_signature"]
    ).hex().removeprefix("0x")


def test_wallet_account_gets_the_calls_to_transfer_and_retire_from_its_wallet(chain_api):
    """A wallet account's transfer and claim answer `wallet-must-sign` with the exact calls;
    nothing is sent until its wallet sends them, and then the chain did what was asked."""
    client, devnet = chain_api.client, chain_api.devnet
    workload, registry = devnet.workload, devnet.workload.c.registry
    cert_id = workload.issue(batch=1)[0]
    holder = next(
        p for p in workload.people if registry.functions.balanceOf(p.address, cert_id).call()
    )
    recipient = next(p for p in workload.people if p is not holder)
    headers = siwe_sign_in(client, holder)
    held = registry.functions.balanceOf(holder.address, cert_id).call()
    hour = (workload.now() // 3600 - 2) * 3600

    asks = {
        "transfer": {"to": recipient.address, "amount_wh": "2"},
        "claim": {
            "amount_wh": 3,
            "beneficiary": "Wallet Holder Ltd",
            "consumption_start": hour,
            "consumption_end": hour + 3600,
        },
    }
    calls = {}
    for action, body in asks.items():
        refused = client.post(
            f"/v1/recs/certificates/{cert_id}/{action}", headers=headers, json=body
        )
        assert refused.status_code == 422, refused.text
        problem = refused.json()
        assert problem["type"].endswith("/wallet-must-sign")
        (calls[action],) = problem["calls"]
        assert calls[action]["to"] == registry.address
    assert calls["transfer"]["function"] == (
        "safeTransferFrom(address,address,uint256,uint256,bytes)"
    )
    assert calls["claim"]["function"].startswith("claim(uint256,uint256,(")
    assert registry.functions.balanceOf(holder.address, cert_id).call() == held  # nothing sent

    for action in ("transfer", "claim"):
        send(devnet.w3, holder, {"to": calls[action]["to"], "data": calls[action]["data"]})
    assert registry.functions.balanceOf(holder.address, cert_id).call() == held - 5
    assert registry.functions.balanceOf(recipient.address, cert_id).call() >= 2
    (claimed,) = registry.events.CertificateClaimed().get_logs(
        from_block=0, argument_filters={"certId": cert_id}
    )
    assert (claimed["args"]["amountWh"], claimed["args"]["beneficiary"]) == (3, "Wallet Holder Ltd")

"""Wallet users relay transactions they signed themselves; everything else is refused."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from backend.accounts.models import Account
from backend.market.orders import SELL
from backend.meters.models import MeterKind
from backend.meters.schemas import MeterCreate
from backend.meters.services import register_meter
from tests.fixtures.api import siwe_sign_in
from tests.fixtures.resources import add_resource


@pytest.fixture
def wallet_session(chain_api):
    client, devnet = chain_api.client, chain_api.devnet
    wallet = devnet.workload.people[1]
    return (
        client,
        devnet,
        wallet,
        siwe_sign_in(client, wallet, chain_id=chain_api.settings.chain_id),
    )


def signed(devnet, account, call=None, to=None, chain_id=None) -> str:
    w3 = devnet.w3
    fields = {
        "from": account.address,
        "nonce": w3.eth.get_transaction_count(account.address),
        "gas": 200_000,
        "maxFeePerGas": 10**11,
        "maxPriorityFeePerGas": 1,
        "chainId": chain_id or w3.eth.chain_id,
    }
    tx = (
        call.build_transaction(fields)
        if call is not None
        else {**fields, "to": to, "value": 1, "data": b""}
    )
    tx.pop("from", None)
    return "0x" + bytes(account.sign_transaction(tx).raw_transaction).hex()


def test_own_transaction_is_relayed_and_polled(wallet_session):
    client, devnet, wallet, headers = wallet_session
    market = devnet.workload.c.market.functions
    reply = client.post(
        "/v1/chain/transactions",
        headers=headers,
        json={"raw_transaction": signed(devnet, wallet, market.incrementNonce())},
    )
    assert reply.status_code == 202, reply.text
    tx_hash = reply.json()["tx_hash"]
    status = client.get(f"/v1/chain/transactions/{tx_hash}", headers=headers).json()
    assert status["status"] == "succeeded" and status["block_number"] > 0
    assert market.nonces(wallet.address).call() == 1


def test_someone_elses_transaction_is_refused(wallet_session):
    client, devnet, _, headers = wallet_session
    other = devnet.workload.people[2]
    reply = client.post(
        "/v1/chain/transactions",
        headers=headers,
        json={
            "raw_transaction": signed(
                devnet, other, devnet.workload.c.market.functions.incrementNonce()
            )
        },
    )
    assert reply.status_code == 403 and reply.json()["signer"] == other.address.lower()


def test_transactions_outside_gridledger_or_this_chain_are_refused(wallet_session):
    client, devnet, wallet, headers = wallet_session
    elsewhere = client.post(
        "/v1/chain/transactions",
        headers=headers,
        json={"raw_transaction": signed(devnet, wallet, to=devnet.workload.people[3].address)},
    )
    assert elsewhere.status_code == 422 and elsewhere.json()["type"].endswith("/relay-rejected")
    other_chain = client.post(
        "/v1/chain/transactions",
        headers=headers,
        json={
            "raw_transaction": signed(
                devnet, wallet, devnet.workload.c.market.functions.incrementNonce(), chain_id=1
            )
        },
    )
    assert other_chain.status_code == 422 and "chain id 1" in other_chain.json()["detail"]
    garbage = client.post(
        "/v1/chain/transactions", headers=headers, json={"raw_transaction": "0xdeadbeef"}
    )
    assert garbage.status_code == 422 and garbage.json()["type"].endswith("/relay-rejected")


def test_a_reverting_call_comes_back_as_the_contract_error(wallet_session):
    client, devnet, wallet, headers = wallet_session
    someone_elses = devnet.workload.order(devnet.workload.people[0], SELL)  # not the wallet's
    listing = devnet.workload.c.market.functions.listOrder(someone_elses.as_tuple())
    reply = client.post(
        "/v1/chain/transactions",
        headers=headers,
        json={"raw_transaction": signed(devnet, wallet, listing)},
    )
    assert reply.status_code == 409
    assert reply.json()["type"].endswith("/contract/EnergyMarketUnauthorizedMaker")
    assert reply.json()["arguments"]["caller"].lower() == wallet.address.lower()
    assert reply.json()["arguments"]["maker"].lower() == someone_elses.maker.lower()


def test_a_device_on_a_meter_with_storage_is_refused(wallet_session, chain_api):
    client, devnet, wallet, headers = wallet_session
    with Session(chain_api.engine) as session:  # the wallet's battery behind its own meter
        account = session.exec(
            select(Account).where(Account.address == wallet.address.lower())
        ).one()
        meter = register_meter(
            session,
            account,
            MeterCreate(name="meter:i17-trust-home", kind=MeterKind.BOTH, capacity_w=10_000),
        )
        add_resource(session, account, meter=meter.name)
        session.commit()
        meter_id = meter.meter_id
    registry = devnet.workload.c.registry.functions
    device = (b"SOLAR_PV".ljust(32, b"\0"), 8_000, b"KR".ljust(32, b"\0"), 0)
    reply = client.post(
        "/v1/chain/transactions",
        headers=headers,
        json={
            "raw_transaction": signed(
                devnet, wallet, registry.registerDevice((*device, bytes.fromhex(meter_id[2:])))
            )
        },
    )
    assert reply.status_code == 409, reply.text
    assert reply.json()["type"].endswith("/storage-behind-certified-meter")
    assert reply.json()["meter_id"] == meter_id.lower()
    # any other meter goes on to the simulation (here: not the wallet's approved meter)
    elsewhere = client.post(
        "/v1/chain/transactions",
        headers=headers,
        json={
            "raw_transaction": signed(
                devnet, wallet, registry.registerDevice((*device, b"\1" * 32))
            )
        },
    )
    assert elsewhere.status_code == 409
    assert elsewhere.json()["type"].endswith("/contract/RECRegistryNotMeterOwner")

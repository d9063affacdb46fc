"""The trading world of the route tests: a custodial seller and a wallet buyer on `chain_api`."""

from __future__ import annotations

import pytest

from backend.chain.transactions import send
from tests.fixtures.api import SELLER_DEPOSIT, SLOT, register_and_login, siwe_sign_in


@pytest.fixture
def market(chain_api):
    """Custodial seller (gas funded, SELLER_DEPOSIT in its market balance), wallet buyer (SIWE),
    indexer and matcher."""
    api, devnet = chain_api, chain_api.devnet
    client = api.client
    seller = register_and_login(client, "seller@example.org")
    seller_address = client.get("/v1/auth/me", headers=seller).json()["address"]
    send(
        devnet.w3,
        devnet.workload.admin,
        {"to": devnet.w3.to_checksum_address(seller_address), "value": 10**18, "gas": 21_000},
    )
    # the seller's collateral, deposited through the API (it keeps no gUSD in its wallet)
    workload = devnet.workload
    token = workload.c.token
    mint = token.encode_abi("mint", [devnet.w3.to_checksum_address(seller_address), SELLER_DEPOSIT])
    send(devnet.w3, workload.admin, {"to": token.address, "data": mint})
    deposited = client.post(
        "/v1/energy/deposits", headers=seller, json={"amount": str(SELLER_DEPOSIT)}
    )
    assert deposited.status_code == 201, deposited.text
    wallet = devnet.workload.people[1]
    buyer = siwe_sign_in(client, wallet, chain_id=api.settings.chain_id)
    indexer = api.indexer()
    return {
        "api": api,
        "client": client,
        "seller": seller,
        "seller_address": seller_address,
        "buyer": buyer,
        "wallet": wallet,
        "indexer": indexer,
        "period": (devnet.workload.now() // SLOT + 2) * SLOT,
    }

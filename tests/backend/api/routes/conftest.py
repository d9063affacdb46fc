"""The trading world of the route tests: a custodial seller and a wallet buyer on `chain_api`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from eth_account import Account as EthAccount
from eth_account.messages import encode_defunct

from backend.accounts.services import siwe_message
from backend.chain.transactions import send
from tests.fixtures.api import SLOT, register_and_login


@pytest.fixture
def market(chain_api):
    """Custodial seller (gas funded), wallet buyer (SIWE), indexer and matcher."""
    api, devnet = chain_api, chain_api.devnet
    client = api.client
    seller = register_and_login(client, "seller@example.org")
    seller_address = client.get("/v1/auth/me", headers=seller).json()["address"]
    send(
        devnet.w3,
        devnet.workload.admin,
        {"to": devnet.w3.to_checksum_address(seller_address), "value": 10**18, "gas": 21_000},
    )
    wallet = devnet.workload.people[1]
    nonce = client.get("/v1/auth/siwe/nonce").json()["nonce"]
    message = siwe_message(
        api.settings, address=wallet.address, nonce=nonce, issued_at=datetime.now(UTC)
    )
    signature = EthAccount.sign_message(encode_defunct(text=message), wallet.key).signature
    tokens = client.post(
        "/v1/auth/siwe/verify",
        json={"message": message, "signature": "0x" + bytes(signature).hex()},
    )
    buyer = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
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

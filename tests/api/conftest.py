"""API test clients: the real app with the database, Redis and (for `chain_api`) a devnet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from eth_account import Account as EthAccount
from eth_account.messages import encode_defunct
from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.services import siwe_message
from backend.api.deps import get_db
from backend.chain.contracts import chain_for
from backend.chain.transactions import send
from backend.core.config import Settings, get_settings
from backend.main import create_app
from backend.market.matching import Matcher
from indexer.base import Indexer, IndexerConfig
from indexer.rpc import RetryPolicy, RpcClient
from tests.fixtures.app import app_on
from tests.fixtures.services import TEST_REDIS_URL

SLOT = 900


@pytest.fixture
def api_settings(tmp_path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, redis_url=TEST_REDIS_URL)


@pytest.fixture
def client(db_session, api_settings, redis_client) -> TestClient:
    """The app on the rolled-back test transaction (no chain: no deployment file)."""
    app = create_app()
    app.dependency_overrides[get_db] = lambda: db_session
    app.dependency_overrides[get_settings] = lambda: api_settings
    with TestClient(app) as test_client:
        yield test_client


@dataclass
class ChainApi:
    client: TestClient
    settings: Settings
    engine: object
    devnet: object

    def indexer(self, **config) -> Indexer:
        """An indexer over the same schema (confirmation depth 0: rows appear at once)."""
        rpc = RpcClient(
            self.devnet.node.rpc_url, timeout_s=5, retry=RetryPolicy(attempts=30, max_delay_s=0.5)
        )
        return Indexer(
            self.engine,
            rpc,
            self.devnet.deployment,
            IndexerConfig(**{"confirmation_depth": 0, **config}),
        )


@pytest.fixture
def chain_api(devnet, fresh_pg_url, redis_client) -> ChainApi:
    """The app on a devnet and an own migrated schema (code under test commits)."""
    settings = devnet.settings.model_copy(
        update={"database_url": fresh_pg_url, "redis_url": TEST_REDIS_URL}
    )
    app, engine = app_on(fresh_pg_url, settings)
    with TestClient(app) as test_client:
        yield ChainApi(test_client, settings, engine, devnet)
    engine.dispose()


def register_and_login(
    client: TestClient, email: str, password: str = "correct horse battery"
) -> dict:
    assert (
        client.post("/v1/auth/register", json={"email": email, "password": password}).status_code
        == 201
    )
    tokens = client.post("/v1/auth/login", json={"email": email, "password": password}).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


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
    return dict(
        api=api,
        client=client,
        seller=seller,
        seller_address=seller_address,
        buyer=buyer,
        wallet=wallet,
        indexer=indexer,
        period=(devnet.workload.now() // SLOT + 2) * SLOT,
    )


def wallet_bid(client, headers, wallet, **terms):
    typed = client.get("/v1/trading/order-typed-data", params=terms, headers=headers)
    assert typed.status_code == 200, typed.text
    document = typed.json()["typed_data"]
    signature = EthAccount.sign_typed_data(wallet.key, full_message=document).signature
    message = document["message"]
    body = {
        **terms,
        "nonce": message["nonce"],
        "salt": str(message["salt"]),
        "expiry": message["expiry"],
        "signature": "0x" + bytes(signature).hex(),
    }
    reply = client.post("/v1/trading/orders", json=body, headers=headers)
    return typed.json()["order_hash"], reply


def match(api):
    with Session(api.engine) as session:
        return Matcher(session, chain_for(api.settings), api.settings).run_once()

"""API test clients: the real app with the database, Redis and (for `chain_api`) a devnet."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from backend.api.deps import get_db
from backend.core.config import Settings, get_settings
from backend.main import create_app
from indexer.base import Indexer, IndexerConfig
from indexer.rpc import RetryPolicy, RpcClient
from tests.fixtures.app import app_on
from tests.fixtures.services import TEST_REDIS_URL


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
        rpc = RpcClient(self.devnet.node.rpc_url, timeout_s=5, retry=RetryPolicy(attempts=30, max_delay_s=0.5))
        return Indexer(self.engine, rpc, self.devnet.deployment, IndexerConfig(**{"confirmation_depth": 0, **config}))


@pytest.fixture
def chain_api(devnet, fresh_pg_url, redis_client) -> ChainApi:
    """The app on a devnet and an own migrated schema (code under test commits)."""
    settings = devnet.settings.model_copy(update={"database_url": fresh_pg_url, "redis_url": TEST_REDIS_URL})
    app, engine = app_on(fresh_pg_url, settings)
    with TestClient(app) as test_client:
        yield ChainApi(test_client, settings, engine, devnet)
    engine.dispose()


def register_and_login(client: TestClient, email: str, password: str = "correct horse battery") -> dict:
    assert client.post("/v1/auth/register", json={"email": email, "password": password}).status_code == 201
    tokens = client.post("/v1/auth/login", json={"email": email, "password": password}).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}

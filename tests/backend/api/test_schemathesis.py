"""Schemathesis against /openapi.json: generated input never yields a 5xx, and every response
(status, Content-Type, body) is one the document declares for its operation.

The app runs on the session's Anvil with its own deployment, a migrated PostgreSQL schema
and test Redis; requests carry a participant's bearer token so authenticated routes are
exercised beyond the 401.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlmodel import Session
from web3 import Web3

from backend.accounts.models import Account
from backend.accounts.security import create_access_token
from backend.core.config import Settings
from indexer.base import Indexer, IndexerConfig
from indexer.rpc import RetryPolicy, RpcClient
from scripts.deploy import deploy_all
from tests.fixtures.app import app_on
from tests.fixtures.database import migrated_schema
from tests.fixtures.indexing import catch_up
from tests.fixtures.services import TEST_REDIS_URL

# The app's schema comes from migrated_schema() and its store is the test Redis.
pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def api_app(anvil, tmp_path_factory):
    with migrated_schema() as url:
        config = Settings(
            _env_file=None,
            data_dir=tmp_path_factory.mktemp("schemathesis"),
            rpc_url=anvil.rpc_url,
            database_url=url,
            redis_url=TEST_REDIS_URL,
            rate_limit_per_minute=10**6,
            anonymous_rate_limit_per_minute=10**6,
            login_failures_before_backoff=10**6,
        )
        deployment = deploy_all(Web3(Web3.HTTPProvider(anvil.rpc_url)), config)
        app, engine = app_on(url, config)
        catch_up(
            Indexer(
                engine,
                RpcClient(anvil.rpc_url, timeout_s=5, retry=RetryPolicy(attempts=10)),
                deployment,
                IndexerConfig(confirmation_depth=0),
            )
        )  # /health needs a cursor
        with Session(engine) as session:
            account = Account(
                email="fuzz@example.org", address="0x" + "5a" * 20, roles=["participant"]
            )
            session.add(account)
            session.commit()
            token = create_access_token(account.id, account.roles, config, minutes=120)

        app.state.fuzz_headers = {"Authorization": f"Bearer {token}"}
        yield app
        engine.dispose()


@pytest.fixture(scope="module")
def api_schema(api_app):
    return schemathesis.openapi.from_asgi("/openapi.json", api_app)


schema = schemathesis.pytest.from_fixture("api_schema")


def _headers(case, api_app) -> dict[str, str]:
    """The participant's token, unless the case brings its own credentials."""
    if case.headers and any(k.lower() in ("authorization", "x-api-key") for k in case.headers):
        return {}
    return dict(api_app.state.fuzz_headers)


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, api_app):
    response = case.call(headers=_headers(case, api_app))
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
    )


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_responses_conform_to_the_document(case, api_app):
    """Errors included: each status is documented for the operation, with its Content-Type
    (`application/problem+json`) and a body matching the `Problem` schema."""
    headers = _headers(case, api_app)
    response = case.call(headers=headers)
    case.validate_response(
        response,
        checks=[status_code_conformance, content_type_conformance, response_schema_conformance],
        headers=headers,
    )

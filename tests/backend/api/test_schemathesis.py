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

from tests.fixtures.fuzz_app import fuzz_headers, fuzzed_app

# The app's schema comes from migrated_schema() and its store is the test Redis.
pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def api_app(anvil, tmp_path_factory):
    with fuzzed_app(anvil.rpc_url, tmp_path_factory.mktemp("schemathesis"), ["participant"]) as app:
        yield app


@pytest.fixture(scope="module")
def api_schema(api_app):
    return schemathesis.openapi.from_asgi("/openapi.json", api_app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, api_app):
    response = case.call(headers=fuzz_headers(case, api_app))
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
    )


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_responses_conform_to_the_document(case, api_app):
    """Errors included: each status is documented for the operation, with its Content-Type
    (`application/problem+json`) and a body matching the `Problem` schema."""
    headers = fuzz_headers(case, api_app)
    response = case.call(headers=headers)
    case.validate_response(
        response,
        checks=[status_code_conformance, content_type_conformance, response_schema_conformance],
        headers=headers,
    )

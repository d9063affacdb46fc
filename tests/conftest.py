"""Shared fixtures, loaded from tests/fixtures/, and the service markers.

Each test is marked by the servers it needs (postgres, redis, anvil), read from the fixtures it
uses; tests that need a service some other way (a subprocess stack, a browser, the MQTT broker,
a fixture parameter) carry the marker themselves. `make test-fast` deselects all of them.
"""

from __future__ import annotations

import pytest

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.database",
    "tests.fixtures.anvil",
    "tests.fixtures.devnet",
    "tests.fixtures.api",
    "tests.fixtures.meters",
]

# Fixture name -> the marker of the server behind it. Fixtures built on these (devnet,
# chain_api, client, market, ...) carry the marker too: item.fixturenames is the closure.
SERVICE_FIXTURES = {
    "pg_url": "postgres",
    "fresh_pg_url": "postgres",
    "redis_client": "redis",
    "own_redis": "redis",
    "anvil": "anvil",
    "fresh_anvil": "anvil",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for marker in sorted(
            {
                SERVICE_FIXTURES[f]
                for f in getattr(item, "fixturenames", ())
                if f in SERVICE_FIXTURES
            }
        ):
            item.add_marker(marker)

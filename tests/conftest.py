"""Shared fixtures, loaded from tests/fixtures/, and the service markers.

Each test is marked by the servers it needs (postgres, redis, anvil), read from the fixtures it
uses; tests that need a service some other way (a subprocess stack, a browser, the MQTT broker,
a fixture parameter) carry the marker themselves. `make test-fast` deselects all of them.
"""

from __future__ import annotations

import os

import pytest

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.database",
    "tests.fixtures.anvil",
    "tests.fixtures.devnet",
    "tests.fixtures.api",
    "tests.fixtures.meters",
]

# Two xdist workers share the machine's PostgreSQL (max_connections 100), and a subprocess stack
# (API, workers, indexer) inherits this: a test's async read pool needs a few connections, not
# the production default of 32 per API process.
os.environ.setdefault("GRIDLEDGER_ASYNC_READ_POOL_SIZE", "6")

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


# The longest tests start first, dealt in turn to the pytest-xdist workers (`make test` runs
# two with `--dist worksteal`, which hands worker i the i-th slice of the collection and lets
# an idle worker take from the end of another's): none of them starts when the others are done.
LONG_TESTS_FIRST = (  # longest first
    "tests/contracts/test_invariants.py::test_market_and_registry_invariants",
    "tests/backend/api/test_schemathesis_stateful.py",
    "tests/backend/api/test_schemathesis.py",
    "tests/e2e/test_chaos_day.py",
    "tests/indexer/test_faults.py",
    "tests/e2e/",
    "tests/scripts/",
    "tests/contracts/market/test_gas.py",
    "tests/indexer/test_mirror.py",
    "tests/indexer/test_fetch_process.py",  # subprocess indexers, kills: 10-20 s each
    "tests/backend/workers/",
)


class LongTestsFirst:
    """A plugin of its own, so that its hook runs after pytest-randomly's shuffle."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        def rank(item: pytest.Item) -> int:
            for position, prefix in enumerate(LONG_TESTS_FIRST):
                if item.nodeid.startswith(prefix):
                    return position
            return len(LONG_TESTS_FIRST)

        long = sorted((i for i in items if rank(i) < len(LONG_TESTS_FIRST)), key=rank)
        rest = [i for i in items if rank(i) == len(LONG_TESTS_FIRST)]
        workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
        ordered: list[pytest.Item] = []
        for worker in range(workers):
            size = (worker + 1) * len(items) // workers - worker * len(items) // workers
            mine = long[worker::workers]
            take = max(0, size - len(mine))
            ordered += mine + rest[:take]
            rest = rest[take:]
        items[:] = ordered + rest


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(LongTestsFirst(), "gridledger-long-tests-first")

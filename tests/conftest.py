"""Shared fixtures. Service fixtures live in tests/fixtures/ and are loaded lazily by use."""

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.database",
    "tests.fixtures.anvil",
    "tests.fixtures.devnet",
]

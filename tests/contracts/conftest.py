"""Named accounts for contract tests on Ape's in-process chain.

Ape's pytest plugin snapshots the chain around each test, so module-scoped
deployments are restored rather than redeployed.
"""

import pytest


@pytest.fixture(scope="session")
def owner(accounts):
    """Deployer and DEFAULT_ADMIN_ROLE holder."""
    return accounts[0]


@pytest.fixture(scope="session")
def alice(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def bob(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def carol(accounts):
    return accounts[3]


@pytest.fixture(scope="session")
def operator(accounts):
    """Holds the market's OPERATOR_ROLE (matches signed bids and offers)."""
    return accounts[4]


@pytest.fixture(scope="session")
def settler(accounts):
    """Holds the market's SETTLER_ROLE (reports metered delivery)."""
    return accounts[5]


@pytest.fixture(scope="session")
def registrar(accounts):
    """Holds the registry's REGISTRAR_ROLE (approves and suspends devices)."""
    return accounts[6]


@pytest.fixture(scope="session")
def issuer(accounts):
    """Holds the registry's ISSUER_ROLE (issues and revokes certificates)."""
    return accounts[7]


@pytest.fixture(scope="session")
def stranger(accounts):
    """An account with no role and no business with the contract under test."""
    return accounts[8]

"""DemandResponse deployment: a utility (alice) with a funded program, two participants (bob,
carol) with collateral posted (module-scoped; Ape snapshots between tests)."""

import pytest

from tests.fixtures.demand_response import BUDGET, COLLATERAL, FUNDING, PROGRAM


@pytest.fixture(scope="module")
def gusd(project, owner):
    return project.GridUSD.deploy(owner, sender=owner)


@pytest.fixture(scope="module")
def dr(project, owner, settler, gusd, alice, bob, carol):
    contract = project.DemandResponse.deploy(owner, gusd, sender=owner)
    contract.grantRole(contract.SETTLER_ROLE(), settler, sender=owner)
    for account in (alice, bob, carol):
        gusd.mint(account, FUNDING, sender=owner)
        gusd.approve(contract, FUNDING, sender=account)
    contract.createProgram(PROGRAM, BUDGET, sender=alice)
    for participant in (bob, carol):
        contract.postCollateral(PROGRAM, COLLATERAL, sender=participant)
    return contract


@pytest.fixture(scope="module", autouse=True)
def _dr_world(dr, owner, settler, alice, bob, carol, stranger):
    """Create every module/session fixture before Ape's per-test snapshots (no rebasing)."""

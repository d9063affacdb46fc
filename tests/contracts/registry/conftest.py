"""Fixtures for RECRegistry tests: a deployed registry with roles, an approved solar device
owned by alice, and period helpers aligned to 15-minute slots in the past."""

import pytest

from tests.fixtures.rec_registry import (
    CAPACITY_W,
    DAY,
    EVIDENCE,
    HOUR,
    device_input,
    solar_meter,
    wind_meter,
)


@pytest.fixture(scope="session", autouse=True)
def _session_fixtures_first(
    owner, alice, bob, carol, operator, registrar, issuer, stranger, base_time
):
    """Create every session fixture before any chain snapshot (keeps Ape's isolation valid)."""


@pytest.fixture(scope="session")
def base_time(chain):
    """Midnight UTC, 40 days before the chain's clock: every period below has ended."""
    return (chain.pending_timestamp // DAY - 40) * DAY


@pytest.fixture(scope="module")
def registry(project, owner, registrar, issuer, alice, bob):
    """The registry with roles granted; alice's and bob's solar and wind meters are approved
    (each owner signs its own meters' readings)."""
    contract = owner.deploy(
        project.RECRegistry, owner, "https://certs.gridledger.example/{id}.json"
    )
    contract.grantRole(contract.REGISTRAR_ROLE(), registrar, sender=owner)
    contract.grantRole(contract.ISSUER_ROLE(), issuer, sender=owner)
    for account in (alice, bob):
        for meter in (solar_meter(account), wind_meter(account)):
            contract.approveMeter(meter, CAPACITY_W, account, sender=registrar)
    return contract


@pytest.fixture
def device_id(registry, alice, registrar, base_time):
    """Alice's 10 kW solar device, commissioned 10 days before `base_time`, approved."""
    registry.registerDevice(
        device_input(solar_meter(alice), commissioned_at=base_time - 10 * DAY), sender=alice
    )
    registry.approveDevice(1, sender=registrar)
    return 1


@pytest.fixture
def issue_hour(registry, issuer, device_id, base_time):
    """Issue one hourly certificate `hour` hours after `base_time` and return its id."""

    def _issue(to, hour=0, volume_wh=5_000, hours=1):
        start = base_time + hour * HOUR
        tx = registry.issue(
            device_id, to, start, start + hours * HOUR, volume_wh, EVIDENCE, sender=issuer
        )
        return registry.CertificateIssued.from_receipt(tx)[0].certId

    return _issue

"""Fixtures for RECRegistry tests: a deployed registry with roles, an approved solar device
owned by alice, and period helpers aligned to 15-minute slots in the past."""

import pytest

SLOT = 900
HOUR = 3600
DAY = 86400

SOLAR = b"SOLAR_PV".ljust(32, b"\0")
WIND = b"WIND_ONSHORE".ljust(32, b"\0")
GRID_DE = b"DE-50HZ".ljust(32, b"\0")
METER_1 = b"METER-0001".ljust(32, b"\0")
METER_2 = b"METER-0002".ljust(32, b"\0")

CAPACITY_W = 10_000  # 10 kW: at most 10,000 Wh per hour
PENDING, APPROVED, SUSPENDED = 0, 1, 2


def device_input(
    technology=SOLAR, capacity_w=CAPACITY_W, grid_area=GRID_DE, commissioned_at=0, meter_id=METER_1
):
    return (technology, capacity_w, grid_area, commissioned_at, meter_id)


def claim_data(
    beneficiary="Bakery Mueller GmbH",
    purpose="Scope 2 market-based",
    start=1,
    end=2,
    location=GRID_DE,
):
    return (beneficiary, purpose, start, end, location)


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
def registry(project, owner, registrar, issuer):
    contract = owner.deploy(
        project.RECRegistry, owner, "https://certs.gridledger.example/{id}.json"
    )
    contract.grantRole(contract.REGISTRAR_ROLE(), registrar, sender=owner)
    contract.grantRole(contract.ISSUER_ROLE(), issuer, sender=owner)
    return contract


@pytest.fixture
def device_id(registry, alice, registrar, base_time):
    """Alice's 10 kW solar device, commissioned 10 days before `base_time`, approved."""
    registry.registerDevice(device_input(commissioned_at=base_time - 10 * DAY), sender=alice)
    registry.approveDevice(1, sender=registrar)
    return 1


@pytest.fixture
def issue_hour(registry, issuer, device_id, base_time):
    """Issue one hourly certificate `hour` hours after `base_time` and return its id."""

    def _issue(to, hour=0, volume_wh=5_000, hours=1):
        start = base_time + hour * HOUR
        tx = registry.issue(device_id, to, start, start + hours * HOUR, volume_wh, sender=issuer)
        return registry.CertificateIssued.from_receipt(tx)[0].certId

    return _issue

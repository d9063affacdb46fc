"""The meter registry: approval, suspension, owner-bound device registration, signed readings
and the evidence roots certificates commit to."""

import ape
import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.market.orders import meter_id
from backend.meters.signing import SignedValues, reading_digest, sign_reading
from backend.recs.evidence import evidence_proof, evidence_root
from tests.fixtures.rec_registry import (
    APPROVED,
    CAPACITY_W,
    EVIDENCE,
    HOUR,
    PENDING,
    SLOT,
    SUSPENDED,
    device_input,
    solar_meter,
    wind_meter,
)

METER_KEY = Account.from_key("0x" + "42" * 32)  # the key in the meter's secure element
OTHER_KEY = Account.from_key("0x" + "43" * 32)
ZERO_ADDRESS = "0x" + "00" * 20
UINT64 = st.integers(0, 2**64 - 1)


@pytest.fixture
def meter(registry, registrar, carol):
    """Carol's meter, approved with METER_KEY as its signing key."""
    meter = meter_id(carol.address, "meter:roof")
    registry.approveMeter(meter, CAPACITY_W, METER_KEY.address, sender=registrar)
    return meter


@pytest.fixture
def signed(registry, chain, meter):
    """Sign `SignedValues` for `meter` with `key` (METER_KEY by default) for this registry."""

    def _sign(values, key=METER_KEY):
        return sign_reading(values, key.key, chain.chain_id, registry.address)

    return _sign


def values_of(meter, start=1_767_225_600, export_wh=1_200, import_wh=0):
    return SignedValues(meter, start, SLOT, import_wh, export_wh)


# --- approval ----------------------------------------------------------------------------


def test_approve_meter_stores_it_and_names_the_owner_from_the_id(registry, registrar, carol):
    meter = meter_id(carol.address, "meter:roof")
    assert registry.meter(meter).status == PENDING

    tx = registry.approveMeter(meter, 7_000, METER_KEY.address, sender=registrar)

    [event] = registry.MeterApproved.from_receipt(tx)
    assert (event.meterId, event.owner, event.capacityW, event.signingKey) == (
        meter,
        carol.address,
        7_000,
        METER_KEY.address,
    )
    stored = registry.meter(meter)
    assert (stored.owner, stored.status, stored.capacityW, stored.signingKey) == (
        carol.address,
        APPROVED,
        7_000,
        METER_KEY.address,
    )


def test_reapproval_rotates_the_key_and_lifts_a_suspension(registry, registrar, meter):
    registry.suspendMeter(meter, sender=registrar)

    registry.approveMeter(meter, 9_000, OTHER_KEY.address, sender=registrar)

    stored = registry.meter(meter)
    assert (stored.status, stored.capacityW, stored.signingKey) == (
        APPROVED,
        9_000,
        OTHER_KEY.address,
    )


def test_suspend_meter_emits_and_refuses_a_meter_that_is_not_approved(
    registry, registrar, meter, carol
):
    tx = registry.suspendMeter(meter, sender=registrar)

    assert [e.meterId for e in registry.MeterSuspended.from_receipt(tx)] == [meter]
    assert registry.meter(meter).status == SUSPENDED
    with ape.reverts(registry.RECRegistryMeterNotApproved, meterId=meter):
        registry.suspendMeter(meter, sender=registrar)
    pending = meter_id(carol.address, "never approved")
    with ape.reverts(registry.RECRegistryMeterNotApproved, meterId=pending):
        registry.suspendMeter(pending, sender=registrar)


def test_approve_meter_refuses_bad_input_and_non_registrars(registry, registrar, carol, meter):
    ownerless = b"\0" * 20 + b"\x01" * 12
    with ape.reverts(registry.RECRegistryMeterWithoutOwner, meterId=ownerless):
        registry.approveMeter(ownerless, 1, METER_KEY.address, sender=registrar)
    with ape.reverts(registry.RECRegistryZeroCapacity):
        registry.approveMeter(meter, 0, METER_KEY.address, sender=registrar)
    with ape.reverts(registry.RECRegistryZeroSigningKey, meterId=meter):
        registry.approveMeter(meter, 1, ZERO_ADDRESS, sender=registrar)
    role = registry.REGISTRAR_ROLE()
    with ape.reverts(registry.AccessControlUnauthorizedAccount, account=carol, neededRole=role):
        registry.approveMeter(meter, 1, carol, sender=carol)
    with ape.reverts(registry.AccessControlUnauthorizedAccount, account=carol, neededRole=role):
        registry.suspendMeter(meter, sender=carol)


# --- devices need their own approved meter -----------------------------------------------


def test_register_device_refuses_a_squat_on_another_owners_meter(registry, alice, bob):
    alices = solar_meter(alice)

    with ape.reverts(registry.RECRegistryNotMeterOwner, caller=bob, meterId=alices):
        registry.registerDevice(device_input(alices), sender=bob)

    assert registry.deviceIdOfMeter(alices) == 0
    registry.registerDevice(device_input(alices), sender=alice)  # the owner still can
    assert registry.deviceIdOfMeter(alices) == 1


def test_register_device_refuses_a_pending_or_suspended_meter(registry, registrar, alice):
    pending = meter_id(alice.address, "not yet approved")
    with ape.reverts(registry.RECRegistryMeterNotApproved, meterId=pending):
        registry.registerDevice(device_input(pending), sender=alice)

    registry.suspendMeter(wind_meter(alice), sender=registrar)
    with ape.reverts(registry.RECRegistryMeterNotApproved, meterId=wind_meter(alice)):
        registry.registerDevice(device_input(wind_meter(alice)), sender=alice)


def test_issuance_stops_while_the_devices_meter_is_suspended(
    registry, registrar, issuer, alice, bob, device_id, base_time
):
    registry.suspendMeter(solar_meter(alice), sender=registrar)

    with ape.reverts(registry.RECRegistryMeterNotApproved, meterId=solar_meter(alice)):
        registry.issue(device_id, bob, base_time, base_time + HOUR, 100, EVIDENCE, sender=issuer)
    with ape.reverts(registry.RECRegistryMeterNotApproved, meterId=solar_meter(alice)):
        registry.issueBatch(
            device_id, bob, [base_time], [base_time + HOUR], [100], [EVIDENCE], sender=issuer
        )

    registry.approveMeter(solar_meter(alice), CAPACITY_W, alice, sender=registrar)
    registry.issue(device_id, bob, base_time, base_time + HOUR, 100, EVIDENCE, sender=issuer)
    assert registry.balanceOf(bob, 1) == 100


# --- signed readings ---------------------------------------------------------------------


def test_a_reading_signed_by_the_meter_key_is_valid(registry, meter, signed):
    values = values_of(meter)
    assert registry.isValidReading(values.as_tuple(), signed(values))


def test_a_forged_signature_is_not_valid(registry, meter, signed):
    values = values_of(meter)
    assert not registry.isValidReading(values.as_tuple(), signed(values, key=OTHER_KEY))
    assert not registry.isValidReading(values.as_tuple(), b"\x01" * 65)
    assert not registry.isValidReading(values.as_tuple(), b"")


def test_a_signed_reading_replayed_to_another_interval_meter_or_value_is_not_valid(
    registry, registrar, meter, signed, carol
):
    values = values_of(meter)
    signature = signed(values)
    other_meter = meter_id(carol.address, "meter:garage")
    registry.approveMeter(other_meter, CAPACITY_W, METER_KEY.address, sender=registrar)
    replays = [
        SignedValues(meter, values.interval_start + SLOT, SLOT, 0, values.export_wh),
        SignedValues(other_meter, values.interval_start, SLOT, 0, values.export_wh),
        SignedValues(meter, values.interval_start, SLOT, 0, values.export_wh + 1),
    ]
    for replay in replays:
        assert not registry.isValidReading(replay.as_tuple(), signature)
    assert registry.isValidReading(values.as_tuple(), signature)


def test_a_reading_of_a_suspended_or_unapproved_meter_is_not_valid(
    registry, registrar, meter, signed, carol
):
    values = values_of(meter)
    signature = signed(values)
    registry.suspendMeter(meter, sender=registrar)
    assert not registry.isValidReading(values.as_tuple(), signature)

    unapproved = values_of(meter_id(carol.address, "meter:unapproved"))
    assert not registry.isValidReading(unapproved.as_tuple(), signed(unapproved))


def test_a_contract_signing_key_verifies_through_erc1271(
    registry, project, registrar, owner, alice, carol, chain
):
    wallet = owner.deploy(project.ERC1271Wallet, METER_KEY.address)
    meter = meter_id(carol.address, "meter:wallet")
    registry.approveMeter(meter, CAPACITY_W, wallet, sender=registrar)
    values = values_of(meter)

    signature = sign_reading(values, METER_KEY.key, chain.chain_id, registry.address)
    forged = sign_reading(values, OTHER_KEY.key, chain.chain_id, registry.address)

    assert registry.isValidReading(values.as_tuple(), signature)
    assert not registry.isValidReading(values.as_tuple(), forged)


def test_a_meter_data_provider_signature_is_valid_for_any_approved_meter(
    registry, owner, registrar, meter, signed
):
    values = values_of(meter)
    assert not registry.isValidReading(values.as_tuple(), signed(values, key=OTHER_KEY))

    registry.grantRole(registry.METER_DATA_PROVIDER_ROLE(), OTHER_KEY.address, sender=owner)

    assert registry.isValidReading(values.as_tuple(), signed(values, key=OTHER_KEY))
    registry.suspendMeter(meter, sender=registrar)
    assert not registry.isValidReading(values.as_tuple(), signed(values, key=OTHER_KEY))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    owner=st.binary(min_size=20, max_size=20),
    name=st.text(max_size=20),
    start=UINT64,
    seconds=st.integers(0, 2**32 - 1),
    import_wh=UINT64,
    export_wh=UINT64,
)
def test_python_reading_digest_equals_the_registry(
    registry, chain, owner, name, start, seconds, import_wh, export_wh
):
    values = SignedValues(meter_id(owner, name), start, seconds, import_wh, export_wh)
    digest = reading_digest(values, chain.chain_id, registry.address)
    assert registry.readingDigest(values.as_tuple()) == digest


# --- evidence roots ----------------------------------------------------------------------


def test_certificates_commit_to_the_readings_and_every_reading_proves_against_the_event(
    registry, project, owner, issuer, alice, bob, chain, device_id, base_time
):
    verifier = owner.deploy(project.EvidenceVerifier)
    meter = solar_meter(alice)  # approved with alice as its signing key
    hours = [base_time, base_time + HOUR, base_time + 2 * HOUR]
    readings = {
        hour: [values_of(meter, hour + q * SLOT, export_wh=100 + q) for q in range(4)]
        for hour in hours
    }
    digests = {
        hour: [reading_digest(v, chain.chain_id, registry.address) for v in values]
        for hour, values in readings.items()
    }
    roots = [evidence_root(digests[hour]) for hour in hours]

    tx = registry.issueBatch(
        device_id, bob, hours, [h + HOUR for h in hours], [406] * 3, roots, sender=issuer
    )

    events = registry.CertificateIssued.from_receipt(tx)
    assert [e.evidenceRoot for e in events] == roots
    for event, hour in zip(events, hours, strict=True):
        for leaf in digests[hour]:
            proof = evidence_proof(digests[hour], leaf)
            assert verifier.verify(proof, event.evidenceRoot, leaf)
        other_hour = digests[hours[(hours.index(hour) + 1) % 3]][0]
        assert not verifier.verify(
            evidence_proof(digests[hour], digests[hour][0]), event.evidenceRoot, other_hour
        )


def test_issue_refuses_a_certificate_without_evidence(registry, issuer, bob, device_id, base_time):
    with ape.reverts(
        registry.RECRegistryMissingEvidence,
        deviceId=device_id,
        periodStart=base_time,
        periodEnd=base_time + HOUR,
    ):
        registry.issue(device_id, bob, base_time, base_time + HOUR, 100, b"\0" * 32, sender=issuer)

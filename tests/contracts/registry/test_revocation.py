"""Revocation freezes a certificate and frees its slots for a corrected one; interface detection."""

import ape

from tests.fixtures.rec_registry import HOUR, claim_data


def period_taken(registry, device_id, start, end):
    """Expects issuance over [start, end) to revert: a slot is held by a certificate."""
    return ape.reverts(
        registry.RECRegistryPeriodAlreadyIssued,
        deviceId=device_id,
        periodStart=start,
        periodEnd=end,
    )


def test_revoke_marks_certificate_and_emits_reason(registry, issuer, bob, issue_hour):
    cert = issue_hour(bob)

    tx = registry.revoke(cert, "meter 0001 readings corrected", sender=issuer)

    [event] = registry.CertificateRevoked.from_receipt(tx)
    assert (event.certId, event.reason, event.by) == (cert, "meter 0001 readings corrected", issuer)
    assert registry.certificate(cert).revoked is True
    assert registry.balanceOf(bob, cert) == 5_000


def test_revoked_certificate_cannot_be_transferred(registry, issuer, bob, carol, issue_hour):
    cert = issue_hour(bob)
    registry.revoke(cert, "fraud", sender=issuer)

    with ape.reverts(registry.RECRegistryCertificateRevoked, certId=cert):
        registry.safeTransferFrom(bob, carol, cert, 1, b"", sender=bob)
    assert registry.balanceOf(carol, cert) == 0


def test_revoked_certificate_cannot_be_batch_transferred(registry, issuer, bob, carol, issue_hour):
    healthy, revoked = issue_hour(bob, hour=0), issue_hour(bob, hour=1)
    registry.revoke(revoked, "fraud", sender=issuer)

    with ape.reverts(registry.RECRegistryCertificateRevoked, certId=revoked):
        registry.safeBatchTransferFrom(bob, carol, [healthy, revoked], [1, 1], b"", sender=bob)
    registry.safeTransferFrom(bob, carol, healthy, 1, b"", sender=bob)
    assert registry.balanceOf(carol, healthy) == 1


def test_revoked_certificate_cannot_be_claimed(registry, issuer, bob, operator, issue_hour):
    cert = issue_hour(bob)
    registry.claim(cert, 1_000, claim_data(), sender=bob)
    registry.revoke(cert, "fraud", sender=issuer)
    registry.setApprovalForAll(operator, True, sender=bob)

    with ape.reverts(registry.RECRegistryCertificateRevoked, certId=cert):
        registry.claim(cert, 1, claim_data(), sender=bob)
    with ape.reverts(registry.RECRegistryCertificateRevoked, certId=cert):
        registry.claimFor(bob, cert, 1, claim_data(), sender=operator)
    # Wh retired before the revocation stay retired.
    assert registry.claimedBalance(cert, bob) == 1_000
    assert registry.certificate(cert).claimedWh == 1_000


def test_revoke_frees_the_period_for_a_corrected_certificate(
    registry, issuer, bob, device_id, base_time, issue_hour
):
    wrong = issue_hour(bob, volume_wh=9_000)
    registry.revoke(wrong, "meter 0001 readings corrected", sender=issuer)

    assert not registry.isPeriodIssued(device_id, base_time, base_time + HOUR)
    corrected = issue_hour(bob, volume_wh=4_000)
    assert corrected == wrong + 1
    view = registry.certificate(corrected)
    assert (view.periodStart, view.periodEnd, view.volumeWh, view.revoked) == (
        base_time,
        base_time + HOUR,
        4_000,
        False,
    )
    assert registry.balanceOf(bob, corrected) == 4_000


def test_corrected_certificate_takes_the_slots_again(
    registry, issuer, bob, device_id, base_time, issue_hour
):
    registry.revoke(issue_hour(bob), "meter 0001 readings corrected", sender=issuer)
    issue_hour(bob, volume_wh=4_000)

    assert registry.isPeriodIssued(device_id, base_time, base_time + HOUR)
    with period_taken(registry, device_id, base_time, base_time + HOUR):
        issue_hour(bob)


def test_revoke_frees_only_its_own_slots(registry, issuer, bob, device_id, base_time, issue_hour):
    # 72 hours = 288 slots: the period spans two words of the slot bitmap.
    long = issue_hour(bob, hour=0, hours=72)
    neighbour = issue_hour(bob, hour=72)
    registry.revoke(long, "meter 0001 readings corrected", sender=issuer)

    assert not registry.isPeriodIssued(device_id, base_time, base_time + 72 * HOUR)
    assert registry.isPeriodIssued(device_id, base_time + 72 * HOUR, base_time + 73 * HOUR)
    assert not registry.certificate(neighbour).revoked
    with period_taken(registry, device_id, base_time, base_time + 73 * HOUR):
        issue_hour(bob, hour=0, hours=73)
    issue_hour(bob, hour=0, hours=72)  # the corrected certificate fits exactly


def test_revoke_keeps_the_period_issued_when_wh_were_retired(
    registry, issuer, bob, device_id, base_time, issue_hour
):
    cert = issue_hour(bob)
    registry.claim(cert, 1_000, claim_data(), sender=bob)
    registry.revoke(cert, "meter 0001 readings corrected", sender=issuer)

    # The 1,000 retired Wh still count this production: no second certificate for it.
    assert registry.isPeriodIssued(device_id, base_time, base_time + HOUR)
    with period_taken(registry, device_id, base_time, base_time + HOUR):
        issue_hour(bob)


def test_revoke_reverts_when_already_revoked(registry, issuer, bob, issue_hour):
    cert = issue_hour(bob)
    registry.revoke(cert, "fraud", sender=issuer)

    with ape.reverts(registry.RECRegistryCertificateRevoked, certId=cert):
        registry.revoke(cert, "again", sender=issuer)


def test_revoke_reverts_when_reason_empty(registry, issuer, bob, issue_hour):
    cert = issue_hour(bob)

    with ape.reverts(registry.RECRegistryEmptyReason):
        registry.revoke(cert, "", sender=issuer)


def test_revoke_reverts_when_certificate_unknown(registry, issuer):
    with ape.reverts(registry.RECRegistryUnknownCertificate, certId=5):
        registry.revoke(5, "fraud", sender=issuer)


def test_revoke_reverts_without_issuer_role(registry, registrar, bob, issue_hour):
    cert = issue_hour(bob)

    with ape.reverts(
        registry.AccessControlUnauthorizedAccount,
        account=registrar,
        neededRole=registry.ISSUER_ROLE(),
    ):
        registry.revoke(cert, "fraud", sender=registrar)


def test_supports_erc1155_access_control_and_registry_interfaces(registry):
    assert registry.supportsInterface("0xd9b67a26")  # IERC1155
    assert registry.supportsInterface("0x0e89341c")  # IERC1155MetadataURI
    assert registry.supportsInterface("0x7965db0b")  # IAccessControl
    assert registry.supportsInterface("0x01ffc9a7")  # IERC165
    assert not registry.supportsInterface("0xffffffff")


def test_uri_is_the_constructor_template(registry):
    assert registry.uri(1) == "https://certs.gridledger.example/{id}.json"


def test_supports_the_registry_interface(registry, project):
    from eth_utils import keccak

    abi = project.IRECRegistry.contract_type
    interface_id = 0
    for method in [*abi.view_methods, *abi.mutable_methods]:
        interface_id ^= int.from_bytes(keccak(text=method.selector)[:4], "big")

    assert registry.supportsInterface(interface_id.to_bytes(4, "big"))

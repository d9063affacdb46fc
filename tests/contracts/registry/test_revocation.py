"""Revocation freezes a certificate; interface detection."""

import ape

from tests.fixtures.rec_registry import claim_data


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


def test_revoke_keeps_the_period_issued(registry, issuer, bob, device_id, base_time, issue_hour):
    cert = issue_hour(bob)
    registry.revoke(cert, "fraud", sender=issuer)

    assert registry.isPeriodIssued(device_id, base_time, base_time + 3600)


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

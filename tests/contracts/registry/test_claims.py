"""Transfers and retirement claims: balances, claimed Wh, supply accounting."""

import ape

from tests.fixtures.rec_registry import GRID_DE, claim_data

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
OFFICE = b"DE-BERLIN-OFFICE-7".ljust(32, b"\0")


def test_safe_transfer_moves_wh_between_holders(registry, bob, carol, issue_hour):
    cert = issue_hour(bob)

    tx = registry.safeTransferFrom(bob, carol, cert, 1_200, b"", sender=bob)

    [event] = registry.TransferSingle.from_receipt(tx)
    assert (event["from"], event.to, event.id, event.value) == (bob, carol, cert, 1_200)
    assert registry.balanceOf(bob, cert) == 3_800
    assert registry.balanceOf(carol, cert) == 1_200
    assert registry.supply(cert) == 5_000


def test_safe_batch_transfer_moves_several_certificates(registry, bob, carol, issue_hour):
    first, second = issue_hour(bob, hour=0), issue_hour(bob, hour=1, volume_wh=4_000)

    registry.safeBatchTransferFrom(bob, carol, [first, second], [5_000, 1_000], b"", sender=bob)

    assert registry.balanceOfBatch([bob, bob, carol, carol], [first, second, first, second]) == [
        0,
        3_000,
        5_000,
        1_000,
    ]


def test_safe_transfer_reverts_when_balance_insufficient(registry, bob, carol, issue_hour):
    cert = issue_hour(bob)

    with ape.reverts(
        registry.ERC1155InsufficientBalance, sender=bob, balance=5_000, needed=5_001, tokenId=cert
    ):
        registry.safeTransferFrom(bob, carol, cert, 5_001, b"", sender=bob)


def test_safe_transfer_reverts_for_unapproved_operator(registry, bob, carol, stranger, issue_hour):
    cert = issue_hour(bob)

    with ape.reverts(registry.ERC1155MissingApprovalForAll, operator=stranger, owner=bob):
        registry.safeTransferFrom(bob, carol, cert, 1, b"", sender=stranger)


def test_claim_burns_wh_records_claimed_balance_and_emits_claim(registry, bob, issue_hour):
    cert = issue_hour(bob)
    data = claim_data(
        "Bakery Mueller GmbH", "Scope 2 market-based 2025", 1_735_689_600, 1_767_225_600, OFFICE
    )

    tx = registry.claim(cert, 2_000, data, sender=bob)

    [burn] = registry.TransferSingle.from_receipt(tx)
    assert (burn.operator, burn["from"], burn.to, burn.id, burn.value) == (
        bob,
        bob,
        ZERO_ADDRESS,
        cert,
        2_000,
    )
    [claimed] = registry.CertificateClaimed.from_receipt(tx)
    assert (claimed.certId, claimed.holder, claimed.amountWh) == (cert, bob, 2_000)
    assert claimed.beneficiary == "Bakery Mueller GmbH"
    assert claimed.purpose == "Scope 2 market-based 2025"
    assert (claimed.consumptionStart, claimed.consumptionEnd) == (1_735_689_600, 1_767_225_600)
    assert claimed.location == OFFICE
    assert claimed.claimId == 1

    assert registry.balanceOf(bob, cert) == 3_000
    assert registry.claimedBalance(cert, bob) == 2_000
    assert registry.certificate(cert).claimedWh == 2_000
    assert registry.supply(cert) == 3_000
    assert registry.claimCount() == 1


def test_claim_ids_are_sequential_across_certificates_and_holders(registry, bob, carol, issue_hour):
    first, second = issue_hour(bob, hour=0), issue_hour(carol, hour=1)

    ids = [
        registry.CertificateClaimed.from_receipt(
            registry.claim(cert, 10, claim_data(), sender=holder)
        )[0].claimId
        for cert, holder in [(first, bob), (second, carol), (first, bob)]
    ]

    assert ids == [1, 2, 3]
    assert registry.claimedBalance(first, bob) == 20
    assert registry.claimedBalance(second, carol) == 10


def test_claim_of_whole_balance_leaves_nothing_to_transfer(registry, bob, carol, issue_hour):
    cert = issue_hour(bob)

    registry.claim(cert, 5_000, claim_data(), sender=bob)

    assert registry.balanceOf(bob, cert) == 0
    assert registry.claimedBalance(cert, bob) == 5_000
    assert registry.supply(cert) == 0
    with ape.reverts(
        registry.ERC1155InsufficientBalance, sender=bob, balance=0, needed=1, tokenId=cert
    ):
        registry.safeTransferFrom(bob, carol, cert, 1, b"", sender=bob)


def test_claimed_wh_cannot_be_transferred_or_claimed_again(registry, bob, carol, issue_hour):
    cert = issue_hour(bob)
    registry.claim(cert, 4_000, claim_data(), sender=bob)

    with ape.reverts(
        registry.ERC1155InsufficientBalance, sender=bob, balance=1_000, needed=4_000, tokenId=cert
    ):
        registry.safeTransferFrom(bob, carol, cert, 4_000, b"", sender=bob)
    with ape.reverts(
        registry.RECRegistryInsufficientBalance,
        certId=cert,
        holder=bob,
        balance=1_000,
        needed=4_000,
    ):
        registry.claim(cert, 4_000, claim_data(), sender=bob)
    assert registry.claimedBalance(cert, carol) == 0


def test_supply_equals_issued_minus_claimed_equals_sum_of_balances(
    registry, alice, bob, carol, issue_hour
):
    cert = issue_hour(bob, volume_wh=9_000)
    registry.safeTransferFrom(bob, carol, cert, 4_000, b"", sender=bob)
    registry.safeTransferFrom(carol, alice, cert, 1_500, b"", sender=carol)
    registry.claim(cert, 700, claim_data(), sender=alice)
    registry.claim(cert, 2_500, claim_data(), sender=carol)
    registry.claim(cert, 5_000, claim_data(), sender=bob)

    holders = [alice, bob, carol]
    balances = registry.balanceOfBatch(holders, [cert] * 3)
    claimed = [registry.claimedBalance(cert, h) for h in holders]
    info = registry.certificate(cert)

    assert balances == [800, 0, 0]
    assert claimed == [700, 5_000, 2_500]
    assert info.claimedWh == sum(claimed) == 8_200
    assert registry.supply(cert) == info.volumeWh - info.claimedWh == sum(balances) == 800


def test_claim_reverts_when_amount_zero(registry, bob, issue_hour):
    cert = issue_hour(bob)

    with ape.reverts(registry.RECRegistryZeroAmount):
        registry.claim(cert, 0, claim_data(), sender=bob)


def test_claim_reverts_when_balance_insufficient(registry, bob, carol, issue_hour):
    cert = issue_hour(bob)

    with ape.reverts(
        registry.RECRegistryInsufficientBalance,
        certId=cert,
        holder=bob,
        balance=5_000,
        needed=5_001,
    ):
        registry.claim(cert, 5_001, claim_data(), sender=bob)
    with ape.reverts(
        registry.RECRegistryInsufficientBalance, certId=cert, holder=carol, balance=0, needed=1
    ):
        registry.claim(cert, 1, claim_data(), sender=carol)


def test_claim_reverts_when_beneficiary_empty(registry, bob, issue_hour):
    cert = issue_hour(bob)

    with ape.reverts(registry.RECRegistryEmptyBeneficiary):
        registry.claim(cert, 1, claim_data(beneficiary=""), sender=bob)


def test_claim_reverts_when_consumption_period_invalid(registry, bob, issue_hour):
    cert = issue_hour(bob)

    with ape.reverts(
        registry.RECRegistryInvalidConsumptionPeriod, consumptionStart=10, consumptionEnd=10
    ):
        registry.claim(cert, 1, claim_data(start=10, end=10), sender=bob)
    with ape.reverts(
        registry.RECRegistryInvalidConsumptionPeriod, consumptionStart=11, consumptionEnd=10
    ):
        registry.claim(cert, 1, claim_data(start=11, end=10), sender=bob)


def test_claim_reverts_when_certificate_unknown(registry, bob):
    with ape.reverts(registry.RECRegistryUnknownCertificate, certId=3):
        registry.claim(3, 1, claim_data(), sender=bob)


def test_claim_for_lets_an_approved_operator_claim_for_the_holder(
    registry, bob, operator, issue_hour
):
    cert = issue_hour(bob)
    registry.setApprovalForAll(operator, True, sender=bob)

    tx = registry.claimFor(bob, cert, 1_000, claim_data(beneficiary="Tenant 4B"), sender=operator)

    [claimed] = registry.CertificateClaimed.from_receipt(tx)
    assert (claimed.holder, claimed.amountWh, claimed.beneficiary) == (bob, 1_000, "Tenant 4B")
    [burn] = registry.TransferSingle.from_receipt(tx)
    assert (burn.operator, burn["from"], burn.value) == (operator, bob, 1_000)
    assert registry.balanceOf(bob, cert) == 4_000
    assert registry.claimedBalance(cert, bob) == 1_000
    assert registry.claimedBalance(cert, operator) == 0


def test_claim_for_allows_the_holder_itself(registry, bob, issue_hour):
    cert = issue_hour(bob)

    registry.claimFor(bob, cert, 10, claim_data(), sender=bob)

    assert registry.claimedBalance(cert, bob) == 10


def test_claim_for_reverts_when_caller_not_approved(registry, bob, operator, stranger, issue_hour):
    cert = issue_hour(bob)

    with ape.reverts(registry.RECRegistryNotHolderOrApproved, operator=stranger, holder=bob):
        registry.claimFor(bob, cert, 10, claim_data(), sender=stranger)
    registry.setApprovalForAll(operator, True, sender=bob)
    registry.setApprovalForAll(operator, False, sender=bob)
    with ape.reverts(registry.RECRegistryNotHolderOrApproved, operator=operator, holder=bob):
        registry.claimFor(bob, cert, 10, claim_data(), sender=operator)


def test_claim_data_location_is_free_form_bytes32(registry, bob, issue_hour):
    cert = issue_hour(bob)

    tx = registry.claim(cert, 1, claim_data(location=GRID_DE), sender=bob)

    assert registry.CertificateClaimed.from_receipt(tx)[0].location == GRID_DE

"""Gas budgets, measured from receipts on Ape's local chain (Cancun rules, refunds applied).

Targets: batched issuance <= 60,000 gas per certificate (50 hourly certificates to an EOA);
transfer and claim <= 60,000 per transaction. Single `issue` cannot meet 60,000: it must
create two storage slots (certificate + holder balance, 2 x 22,100) on top of the 21,000
base cost, so its budget here is a regression guard, not the target. Issuance checks that the
device's meter is approved (two cold reads, device meter id and meter record: 4,200 gas) and
emits the evidence root, hence 105,000 for an existing bitmap word (was 100,000).
"""

from tests.fixtures.rec_registry import EVIDENCE, HOUR, claim_data, evidence_roots

BATCH = 50


def test_gas_issue_batch_of_50_hourly_certificates_per_certificate(
    registry, issuer, bob, device_id, base_time
):
    starts = [base_time + i * HOUR for i in range(BATCH)]
    ends = [s + HOUR for s in starts]

    tx = registry.issueBatch(
        device_id,
        bob,
        starts,
        ends,
        [5_000] * BATCH,
        evidence_roots(starts),
        sender=issuer,
    )

    per_certificate = tx.gas_used / BATCH
    print(f"\ngas issueBatch x{BATCH}: total {tx.gas_used}, per certificate {per_certificate:.0f}")
    assert registry.certificateCount() == BATCH
    assert per_certificate <= 60_000


def test_gas_single_issue(registry, issuer, bob, device_id, base_time):
    first = registry.issue(
        device_id, bob, base_time, base_time + HOUR, 5_000, EVIDENCE, sender=issuer
    )
    # Second hour of the same day: the device's bitmap word already exists.
    second = registry.issue(
        device_id, bob, base_time + HOUR, base_time + 2 * HOUR, 5_000, EVIDENCE, sender=issuer
    )

    print(f"\ngas issue: new bitmap word {first.gas_used}, existing word {second.gas_used}")
    assert second.gas_used < first.gas_used
    assert second.gas_used <= 105_000
    assert first.gas_used <= 120_000


def test_gas_transfer(registry, bob, carol, issue_hour):
    cert = issue_hour(bob)

    to_new_holder = registry.safeTransferFrom(bob, carol, cert, 1_000, b"", sender=bob)
    to_existing_holder = registry.safeTransferFrom(bob, carol, cert, 1_000, b"", sender=bob)

    print(
        f"\ngas safeTransferFrom: new holder {to_new_holder.gas_used},"
        f" existing {to_existing_holder.gas_used}"
    )
    assert to_new_holder.gas_used <= 60_000
    assert to_existing_holder.gas_used <= 60_000


def test_gas_claim(registry, bob, issue_hour):
    cert = issue_hour(bob)
    data = claim_data(
        "Bakery Mueller GmbH", "Scope 2 market-based 2025", 1_735_689_600, 1_767_225_600
    )

    partial = registry.claim(cert, 1_000, data, sender=bob)
    rest = registry.claim(cert, 4_000, data, sender=bob)

    print(f"\ngas claim: partial {partial.gas_used}, remaining balance {rest.gas_used}")
    assert partial.gas_used <= 60_000
    assert rest.gas_used <= 60_000

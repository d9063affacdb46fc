"""Issuance: validation, events, on-chain certificate data and the double-counting guard."""

import ape

from tests.fixtures.rec_registry import (
    CAPACITY_W,
    DAY,
    EVIDENCE,
    GRID_DE,
    HOUR,
    PENDING,
    SLOT,
    SOLAR,
    SUSPENDED,
    device_input,
    evidence_roots,
    solar_meter,
    wind_meter,
)

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def hourly(base_time, first_hour, count):
    starts = [base_time + (first_hour + i) * HOUR for i in range(count)]
    return starts, [s + HOUR for s in starts]


# --- issue -------------------------------------------------------------------------------


def test_issue_mints_volume_and_stores_certificate(
    registry, chain, issuer, bob, device_id, base_time
):
    tx = registry.issue(device_id, bob, base_time, base_time + HOUR, 7_500, EVIDENCE, sender=issuer)

    [event] = registry.CertificateIssued.from_receipt(tx)
    assert (event.certId, event.deviceId, event.to) == (1, device_id, bob)
    assert (event.periodStart, event.periodEnd, event.volumeWh) == (
        base_time,
        base_time + HOUR,
        7_500,
    )
    [transfer] = registry.TransferSingle.from_receipt(tx)
    assert (transfer.operator, transfer.to, transfer.id, transfer.value) == (issuer, bob, 1, 7_500)
    assert transfer["from"] == ZERO_ADDRESS

    assert registry.balanceOf(bob, 1) == 7_500
    assert registry.supply(1) == 7_500
    assert registry.certificateCount() == 1
    cert = registry.certificate(1)
    assert cert.deviceId == device_id
    assert cert.technology == SOLAR
    assert cert.gridArea == GRID_DE
    assert (cert.periodStart, cert.periodEnd) == (base_time, base_time + HOUR)
    assert cert.issuedAt == chain.blocks[tx.block_number].timestamp
    assert (cert.volumeWh, cert.claimedWh, cert.revoked) == (7_500, 0, False)


def test_issue_assigns_sequential_certificate_ids(registry, issuer, bob, carol, issue_hour):
    assert issue_hour(bob, hour=0) == 1
    assert issue_hour(carol, hour=1) == 2

    assert registry.certificateCount() == 2
    assert registry.balanceOf(carol, 2) == 5_000
    assert registry.balanceOf(carol, 1) == 0


def test_issue_accepts_volume_at_capacity_limit(registry, issuer, bob, device_id, base_time):
    # 10 kW for 15 minutes -> 2,500 Wh at most.
    registry.issue(device_id, bob, base_time, base_time + SLOT, 2_500, EVIDENCE, sender=issuer)

    assert registry.balanceOf(bob, 1) == 2_500


def test_issue_reverts_when_volume_above_capacity(registry, issuer, bob, device_id, base_time):
    with ape.reverts(
        registry.RECRegistryVolumeImplausible, deviceId=device_id, volumeWh=10_001, maxWh=CAPACITY_W
    ):
        registry.issue(device_id, bob, base_time, base_time + HOUR, 10_001, EVIDENCE, sender=issuer)


def test_issue_reverts_when_volume_zero(registry, issuer, bob, device_id, base_time):
    with ape.reverts(
        registry.RECRegistryZeroVolume,
        deviceId=device_id,
        periodStart=base_time,
        periodEnd=base_time + HOUR,
    ):
        registry.issue(device_id, bob, base_time, base_time + HOUR, 0, EVIDENCE, sender=issuer)


def test_issue_reverts_when_period_not_aligned(registry, issuer, bob, device_id, base_time):
    with ape.reverts(
        registry.RECRegistryPeriodNotAligned, periodStart=base_time + 60, periodEnd=base_time + HOUR
    ):
        registry.issue(
            device_id, bob, base_time + 60, base_time + HOUR, 1_000, EVIDENCE, sender=issuer
        )
    with ape.reverts(
        registry.RECRegistryPeriodNotAligned, periodStart=base_time, periodEnd=base_time + HOUR + 1
    ):
        registry.issue(
            device_id, bob, base_time, base_time + HOUR + 1, 1_000, EVIDENCE, sender=issuer
        )


def test_issue_reverts_when_period_empty_or_reversed(registry, issuer, bob, device_id, base_time):
    with ape.reverts(registry.RECRegistryPeriodEmpty, periodStart=base_time, periodEnd=base_time):
        registry.issue(device_id, bob, base_time, base_time, 1_000, EVIDENCE, sender=issuer)
    with ape.reverts(
        registry.RECRegistryPeriodEmpty, periodStart=base_time + HOUR, periodEnd=base_time
    ):
        registry.issue(device_id, bob, base_time + HOUR, base_time, 1_000, EVIDENCE, sender=issuer)


def test_issue_reverts_when_period_longer_than_31_days(registry, issuer, bob, device_id, base_time):
    end = base_time + 31 * DAY + SLOT
    with ape.reverts(
        registry.RECRegistryPeriodTooLong, periodStart=base_time, periodEnd=end, maxLength=31 * DAY
    ):
        registry.issue(device_id, bob, base_time, end, 1_000, EVIDENCE, sender=issuer)


def test_issue_accepts_a_31_day_period(registry, issuer, bob, device_id, base_time):
    registry.issue(
        device_id, bob, base_time, base_time + 31 * DAY, 1_000_000, EVIDENCE, sender=issuer
    )

    assert registry.isPeriodIssued(device_id, base_time + 30 * DAY, base_time + 31 * DAY)
    assert not registry.isPeriodIssued(device_id, base_time + 31 * DAY, base_time + 31 * DAY + SLOT)


def test_issue_reverts_when_period_in_future(registry, chain, issuer, bob, device_id):
    now = (chain.pending_timestamp // SLOT + 10) * SLOT
    chain.pending_timestamp = now
    end = now + SLOT
    with ape.reverts(registry.RECRegistryPeriodInFuture, periodEnd=end, nowTimestamp=now):
        registry.issue(device_id, bob, now, end, 100, EVIDENCE, sender=issuer)


def test_issue_accepts_period_ending_at_block_time(registry, chain, issuer, bob, device_id):
    now = (chain.pending_timestamp // SLOT + 10) * SLOT
    chain.pending_timestamp = now

    registry.issue(device_id, bob, now - SLOT, now, 100, EVIDENCE, sender=issuer)

    assert registry.certificate(1).periodEnd == now


def test_issue_reverts_when_period_before_commissioning(
    registry, issuer, bob, device_id, base_time
):
    commissioned = base_time - 10 * DAY
    start = commissioned - HOUR
    with ape.reverts(
        registry.RECRegistryPeriodBeforeCommissioning,
        deviceId=device_id,
        periodStart=start,
        commissionedAt=commissioned,
    ):
        registry.issue(device_id, bob, start, start + HOUR, 100, EVIDENCE, sender=issuer)


def test_issue_reverts_when_device_pending(registry, alice, issuer, bob, base_time):
    registry.registerDevice(device_input(solar_meter(alice)), sender=alice)

    with ape.reverts(registry.RECRegistryDeviceNotApproved, deviceId=1, status=PENDING):
        registry.issue(1, bob, base_time, base_time + HOUR, 100, EVIDENCE, sender=issuer)


def test_issue_reverts_when_device_suspended(
    registry, registrar, issuer, bob, device_id, base_time
):
    registry.suspendDevice(device_id, sender=registrar)

    with ape.reverts(registry.RECRegistryDeviceNotApproved, deviceId=device_id, status=SUSPENDED):
        registry.issue(device_id, bob, base_time, base_time + HOUR, 100, EVIDENCE, sender=issuer)
    starts, ends = hourly(base_time, 0, 2)
    with ape.reverts(registry.RECRegistryDeviceNotApproved, deviceId=device_id, status=SUSPENDED):
        registry.issueBatch(
            device_id, bob, starts, ends, [100, 100], evidence_roots(starts), sender=issuer
        )


def test_issue_resumes_after_reapproval(registry, registrar, issuer, bob, device_id, issue_hour):
    registry.suspendDevice(device_id, sender=registrar)
    registry.approveDevice(device_id, sender=registrar)

    issue_hour(bob)

    assert registry.balanceOf(bob, 1) == 5_000


def test_issue_reverts_when_device_unknown(registry, issuer, bob, base_time):
    with ape.reverts(registry.RECRegistryUnknownDevice, deviceId=9):
        registry.issue(9, bob, base_time, base_time + HOUR, 100, EVIDENCE, sender=issuer)


def test_issue_reverts_when_recipient_is_zero_address(registry, issuer, device_id, base_time):
    with ape.reverts(registry.ERC1155InvalidReceiver, receiver=ZERO_ADDRESS):
        registry.issue(
            device_id, ZERO_ADDRESS, base_time, base_time + HOUR, 100, EVIDENCE, sender=issuer
        )


def test_issue_and_issue_batch_revert_without_issuer_role(
    registry, registrar, device_id, base_time
):
    role = registry.ISSUER_ROLE()
    with ape.reverts(registry.AccessControlUnauthorizedAccount, account=registrar, neededRole=role):
        registry.issue(
            device_id, registrar, base_time, base_time + HOUR, 100, EVIDENCE, sender=registrar
        )
    with ape.reverts(registry.AccessControlUnauthorizedAccount, account=registrar, neededRole=role):
        registry.issueBatch(
            device_id,
            registrar,
            [base_time],
            [base_time + HOUR],
            [100],
            [EVIDENCE],
            sender=registrar,
        )


# --- double-counting guard ---------------------------------------------------------------


def test_issue_reverts_when_same_period_issued_twice(
    registry, issuer, bob, device_id, base_time, issue_hour
):
    issue_hour(bob, hour=3)
    start = base_time + 3 * HOUR

    with ape.reverts(
        registry.RECRegistryPeriodAlreadyIssued,
        deviceId=device_id,
        periodStart=start,
        periodEnd=start + HOUR,
    ):
        registry.issue(device_id, bob, start, start + HOUR, 100, EVIDENCE, sender=issuer)


def test_issue_reverts_when_period_partially_overlaps(
    registry, issuer, bob, device_id, base_time, issue_hour
):
    issue_hour(bob, hour=3)  # [3h, 4h)
    start = base_time + 3 * HOUR + 3 * SLOT  # [3h45, 4h45) shares the slot 3h45-4h

    with ape.reverts(
        registry.RECRegistryPeriodAlreadyIssued,
        deviceId=device_id,
        periodStart=start,
        periodEnd=start + HOUR,
    ):
        registry.issue(device_id, bob, start, start + HOUR, 100, EVIDENCE, sender=issuer)


def test_issue_reverts_when_longer_period_covers_an_issued_one(
    registry, issuer, bob, device_id, base_time, issue_hour
):
    issue_hour(bob, hour=30)

    with ape.reverts(
        registry.RECRegistryPeriodAlreadyIssued,
        deviceId=device_id,
        periodStart=base_time,
        periodEnd=base_time + 7 * DAY,
    ):
        registry.issue(
            device_id, bob, base_time, base_time + 7 * DAY, 100_000, EVIDENCE, sender=issuer
        )


def test_issue_reverts_when_overlap_is_only_in_a_later_bitmap_word(
    registry, issuer, bob, device_id, base_time
):
    # A bitmap word covers 256 slots (64 hours); pick the first word boundary after base_time.
    boundary = ((base_time // SLOT) // 256 + 1) * 256 * SLOT
    registry.issue(
        device_id, bob, boundary + HOUR, boundary + 2 * HOUR, 100, EVIDENCE, sender=issuer
    )
    start, end = boundary - 10 * HOUR, boundary + 2 * HOUR

    with ape.reverts(
        registry.RECRegistryPeriodAlreadyIssued,
        deviceId=device_id,
        periodStart=start,
        periodEnd=end,
    ):
        registry.issue(device_id, bob, start, end, 100, EVIDENCE, sender=issuer)
    # The reverted period's first-word slots were not marked, so they can still be issued.
    assert not registry.isPeriodIssued(device_id, start, boundary + HOUR)
    registry.issue(device_id, bob, start, boundary + HOUR, 100, EVIDENCE, sender=issuer)
    assert registry.isPeriodIssued(device_id, boundary - SLOT, boundary)
    assert registry.isPeriodIssued(device_id, boundary, boundary + SLOT)


def test_issue_allows_adjacent_periods(registry, issuer, bob, device_id, issue_hour):
    issue_hour(bob, hour=3)
    issue_hour(bob, hour=2)
    issue_hour(bob, hour=4)

    assert registry.certificateCount() == 3


def test_issue_allows_backfilling_an_earlier_gap(
    registry, issuer, bob, device_id, base_time, issue_hour
):
    issue_hour(bob, hour=0)
    issue_hour(bob, hour=5)

    # Late meter data for 01:00-05:00 arrives after 05:00-06:00 was certified.
    registry.issue(
        device_id, bob, base_time + HOUR, base_time + 5 * HOUR, 20_000, EVIDENCE, sender=issuer
    )

    assert registry.balanceOf(bob, 3) == 20_000
    assert registry.isPeriodIssued(device_id, base_time, base_time + 6 * HOUR)


def test_issue_guard_is_per_device(
    registry, alice, registrar, issuer, bob, device_id, base_time, issue_hour
):
    issue_hour(bob, hour=0)
    registry.registerDevice(device_input(wind_meter(alice)), sender=alice)
    registry.approveDevice(2, sender=registrar)

    registry.issue(2, bob, base_time, base_time + HOUR, 5_000, EVIDENCE, sender=issuer)

    assert registry.certificate(2).deviceId == 2


def test_is_period_issued_reports_overlap(registry, bob, device_id, base_time, issue_hour):
    assert not registry.isPeriodIssued(device_id, base_time, base_time + DAY)
    issue_hour(bob, hour=5)

    assert registry.isPeriodIssued(device_id, base_time, base_time + DAY)
    assert registry.isPeriodIssued(
        device_id, base_time + 5 * HOUR + 2 * SLOT, base_time + 5 * HOUR + 3 * SLOT
    )
    assert not registry.isPeriodIssued(device_id, base_time, base_time + 5 * HOUR)
    assert not registry.isPeriodIssued(device_id, base_time + 6 * HOUR, base_time + DAY)
    with ape.reverts(
        registry.RECRegistryPeriodNotAligned, periodStart=base_time + 1, periodEnd=base_time + HOUR
    ):
        registry.isPeriodIssued(device_id, base_time + 1, base_time + HOUR)


# --- issueBatch --------------------------------------------------------------------------


def test_issue_batch_mints_one_certificate_per_period_in_one_transfer_batch(
    registry, issuer, bob, device_id, base_time, issue_hour
):
    issue_hour(bob, hour=40)  # certificate 1, so the batch starts at id 2
    starts, ends = hourly(base_time, 0, 5)
    volumes = [1_000, 2_000, 3_000, 4_000, 5_000]

    tx = registry.issueBatch(
        device_id, bob, starts, ends, volumes, evidence_roots(volumes), sender=issuer
    )

    [batch] = registry.TransferBatch.from_receipt(tx)
    assert batch.ids == [2, 3, 4, 5, 6]
    assert batch.values == volumes
    assert (batch.operator, batch["from"], batch.to) == (issuer, ZERO_ADDRESS, bob)
    assert registry.TransferSingle.from_receipt(tx) == []
    issued = registry.CertificateIssued.from_receipt(tx)
    assert [e.certId for e in issued] == [2, 3, 4, 5, 6]
    assert [(e.periodStart, e.periodEnd, e.volumeWh) for e in issued] == list(
        zip(starts, ends, volumes, strict=True)
    )
    assert registry.balanceOfBatch([bob] * 5, [2, 3, 4, 5, 6]) == volumes
    assert registry.certificateCount() == 6
    assert registry.certificate(4).periodStart == starts[2]


def test_issue_batch_of_one_emits_transfer_single(registry, issuer, bob, device_id, base_time):
    tx = registry.issueBatch(
        device_id, bob, [base_time], [base_time + HOUR], [900], [EVIDENCE], sender=issuer
    )

    assert len(registry.TransferSingle.from_receipt(tx)) == 1
    assert registry.balanceOf(bob, 1) == 900


def test_issue_batch_reverts_when_periods_overlap_within_batch(
    registry, issuer, bob, device_id, base_time
):
    starts = [base_time, base_time + HOUR, base_time + HOUR + 2 * SLOT]
    ends = [s + HOUR for s in starts]

    with ape.reverts(
        registry.RECRegistryPeriodAlreadyIssued,
        deviceId=device_id,
        periodStart=starts[2],
        periodEnd=ends[2],
    ):
        registry.issueBatch(
            device_id,
            bob,
            starts,
            ends,
            [100, 100, 100],
            evidence_roots(starts),
            sender=issuer,
        )
    assert registry.certificateCount() == 0
    assert not registry.isPeriodIssued(device_id, base_time, base_time + DAY)


def test_issue_batch_reverts_when_period_overlaps_earlier_issuance(
    registry, issuer, bob, device_id, base_time, issue_hour
):
    issue_hour(bob, hour=2)
    starts, ends = hourly(base_time, 0, 4)

    with ape.reverts(
        registry.RECRegistryPeriodAlreadyIssued,
        deviceId=device_id,
        periodStart=starts[2],
        periodEnd=ends[2],
    ):
        registry.issueBatch(
            device_id, bob, starts, ends, [100] * 4, evidence_roots(starts), sender=issuer
        )


def test_issue_batch_validates_every_period(registry, issuer, bob, device_id, base_time):
    starts, ends = hourly(base_time, 0, 3)
    with ape.reverts(
        registry.RECRegistryVolumeImplausible, deviceId=device_id, volumeWh=20_000, maxWh=CAPACITY_W
    ):
        registry.issueBatch(
            device_id,
            bob,
            starts,
            ends,
            [100, 20_000, 100],
            evidence_roots(starts),
            sender=issuer,
        )
    with ape.reverts(
        registry.RECRegistryPeriodNotAligned, periodStart=starts[2] + 1, periodEnd=ends[2]
    ):
        registry.issueBatch(
            device_id,
            bob,
            [starts[0], starts[1], starts[2] + 1],
            ends,
            [1, 1, 1],
            evidence_roots(ends),
            sender=issuer,
        )


def test_issue_batch_reverts_when_lengths_differ(registry, issuer, bob, device_id, base_time):
    starts, ends = hourly(base_time, 0, 3)
    roots = evidence_roots(starts)
    with ape.reverts(
        registry.RECRegistryLengthMismatch, starts=3, ends=2, volumes=3, evidenceRoots=3
    ):
        registry.issueBatch(device_id, bob, starts, ends[:2], [1, 1, 1], roots, sender=issuer)
    with ape.reverts(
        registry.RECRegistryLengthMismatch, starts=3, ends=3, volumes=4, evidenceRoots=3
    ):
        registry.issueBatch(device_id, bob, starts, ends, [1, 1, 1, 1], roots, sender=issuer)
    with ape.reverts(
        registry.RECRegistryLengthMismatch, starts=3, ends=3, volumes=3, evidenceRoots=2
    ):
        registry.issueBatch(device_id, bob, starts, ends, [1, 1, 1], roots[:2], sender=issuer)


def test_issue_batch_reverts_when_empty(registry, issuer, bob, device_id):
    with ape.reverts(registry.RECRegistryEmptyBatch):
        registry.issueBatch(device_id, bob, [], [], [], [], sender=issuer)


# --- views -------------------------------------------------------------------------------


def test_certificate_view_reverts_when_unknown(registry):
    with ape.reverts(registry.RECRegistryUnknownCertificate, certId=1):
        registry.certificate(1)


def test_supply_of_unknown_certificate_is_zero(registry):
    assert registry.supply(42) == 0


def test_issue_reverts_when_recipient_contract_rejects_erc1155(
    registry, issuer, device_id, base_time
):
    # The registry itself implements no onERC1155Received hook.
    with ape.reverts(registry.ERC1155InvalidReceiver, receiver=registry.address):
        registry.issue(
            device_id, registry.address, base_time, base_time + HOUR, 100, EVIDENCE, sender=issuer
        )
    with ape.reverts(registry.ERC1155InvalidReceiver, receiver=registry.address):
        registry.issueBatch(
            device_id,
            registry.address,
            [base_time, base_time + HOUR],
            [base_time + HOUR, base_time + 2 * HOUR],
            [100, 100],
            evidence_roots([100, 100]),
            sender=issuer,
        )

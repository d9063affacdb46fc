"""Device registration and the registrar's approve / suspend lifecycle."""

import ape

from tests.fixtures.rec_registry import (
    APPROVED,
    GRID_DE,
    PENDING,
    SOLAR,
    SUSPENDED,
    WIND,
    device_input,
    solar_meter,
    wind_meter,
)

ZERO32 = b"\0" * 32


def test_register_device_stores_fields_and_emits_event(registry, bob):
    meter = wind_meter(bob)
    tx = registry.registerDevice(
        device_input(meter, technology=WIND, capacity_w=3_000_000, commissioned_at=1_600_000_000),
        sender=bob,
    )

    [event] = registry.DeviceRegistered.from_receipt(tx)
    assert event.deviceId == 1
    assert event.owner == bob
    assert event.technology == WIND
    assert event.capacityW == 3_000_000
    assert event.gridArea == GRID_DE
    assert event.commissionedAt == 1_600_000_000
    assert event.meterId == meter

    stored = registry.device(1)
    assert stored.owner == bob
    assert stored.status == PENDING
    assert stored.technology == WIND
    assert stored.capacityW == 3_000_000
    assert stored.gridArea == GRID_DE
    assert stored.commissionedAt == 1_600_000_000
    assert stored.meterId == meter
    assert registry.deviceIdOfMeter(meter) == 1


def test_register_device_assigns_sequential_ids_from_one(registry, alice, bob):
    registry.registerDevice(device_input(solar_meter(alice)), sender=alice)
    tx = registry.registerDevice(device_input(solar_meter(bob)), sender=bob)

    assert registry.DeviceRegistered.from_receipt(tx)[0].deviceId == 2
    assert registry.deviceCount() == 2
    assert registry.device(2).owner == bob
    assert registry.deviceIdOfMeter(solar_meter(alice)) == 1


def test_register_device_reverts_when_meter_already_registered(registry, alice):
    meter = solar_meter(alice)
    registry.registerDevice(device_input(meter), sender=alice)

    with ape.reverts(registry.RECRegistryMeterAlreadyRegistered, meterId=meter, deviceId=1):
        registry.registerDevice(device_input(meter, technology=WIND), sender=alice)


def test_register_device_reverts_when_capacity_zero(registry, alice):
    with ape.reverts(registry.RECRegistryZeroCapacity):
        registry.registerDevice(device_input(solar_meter(alice), capacity_w=0), sender=alice)


def test_register_device_reverts_when_meter_technology_or_grid_area_empty(registry, alice):
    meter = solar_meter(alice)
    with ape.reverts(
        registry.RECRegistryIncompleteDevice, technology=SOLAR, gridArea=GRID_DE, meterId=ZERO32
    ):
        registry.registerDevice(device_input(ZERO32), sender=alice)
    with ape.reverts(
        registry.RECRegistryIncompleteDevice, technology=ZERO32, gridArea=GRID_DE, meterId=meter
    ):
        registry.registerDevice(device_input(meter, technology=ZERO32), sender=alice)
    with ape.reverts(
        registry.RECRegistryIncompleteDevice, technology=SOLAR, gridArea=ZERO32, meterId=meter
    ):
        registry.registerDevice(device_input(meter, grid_area=ZERO32), sender=alice)


def test_approve_device_sets_approved_and_emits_status_change(registry, alice, registrar):
    registry.registerDevice(device_input(solar_meter(alice)), sender=alice)

    tx = registry.approveDevice(1, sender=registrar)

    [event] = registry.DeviceStatusChanged.from_receipt(tx)
    assert (event.deviceId, event.oldStatus, event.newStatus, event.by) == (
        1,
        PENDING,
        APPROVED,
        registrar,
    )
    assert registry.device(1).status == APPROVED


def test_suspend_device_then_reapprove(registry, registrar, device_id):
    tx = registry.suspendDevice(device_id, sender=registrar)
    [event] = registry.DeviceStatusChanged.from_receipt(tx)
    assert (event.oldStatus, event.newStatus, event.by) == (APPROVED, SUSPENDED, registrar)
    assert registry.device(device_id).status == SUSPENDED

    tx = registry.approveDevice(device_id, sender=registrar)
    [event] = registry.DeviceStatusChanged.from_receipt(tx)
    assert (event.oldStatus, event.newStatus) == (SUSPENDED, APPROVED)
    assert registry.device(device_id).status == APPROVED


def test_suspend_device_rejects_a_pending_device(registry, alice, registrar):
    registry.registerDevice(device_input(solar_meter(alice)), sender=alice)

    registry.suspendDevice(1, sender=registrar)

    assert registry.device(1).status == SUSPENDED


def test_approve_device_reverts_when_already_approved(registry, registrar, device_id):
    with ape.reverts(
        registry.RECRegistryInvalidStatusTransition,
        deviceId=device_id,
        current=APPROVED,
        requested=APPROVED,
    ):
        registry.approveDevice(device_id, sender=registrar)


def test_suspend_device_reverts_when_already_suspended(registry, registrar, device_id):
    registry.suspendDevice(device_id, sender=registrar)

    with ape.reverts(
        registry.RECRegistryInvalidStatusTransition,
        deviceId=device_id,
        current=SUSPENDED,
        requested=SUSPENDED,
    ):
        registry.suspendDevice(device_id, sender=registrar)


def test_approve_and_suspend_revert_when_device_unknown(registry, registrar):
    with ape.reverts(registry.RECRegistryUnknownDevice, deviceId=7):
        registry.approveDevice(7, sender=registrar)
    with ape.reverts(registry.RECRegistryUnknownDevice, deviceId=7):
        registry.suspendDevice(7, sender=registrar)


def test_device_view_reverts_when_device_unknown(registry):
    with ape.reverts(registry.RECRegistryUnknownDevice, deviceId=1):
        registry.device(1)


def test_approve_and_suspend_revert_without_registrar_role(registry, alice, issuer, device_id):
    role = registry.REGISTRAR_ROLE()
    with ape.reverts(registry.AccessControlUnauthorizedAccount, account=alice, neededRole=role):
        registry.approveDevice(device_id, sender=alice)
    with ape.reverts(registry.AccessControlUnauthorizedAccount, account=issuer, neededRole=role):
        registry.suspendDevice(device_id, sender=issuer)


def test_roles_are_keccak_constants_and_admin_holds_default_admin(
    registry, owner, registrar, issuer
):
    from eth_utils import keccak

    assert registry.REGISTRAR_ROLE() == keccak(text="REGISTRAR_ROLE")
    assert registry.ISSUER_ROLE() == keccak(text="ISSUER_ROLE")
    assert registry.hasRole(b"\0" * 32, owner)
    assert registry.hasRole(registry.REGISTRAR_ROLE(), registrar)
    assert registry.hasRole(registry.ISSUER_ROLE(), issuer)
    assert not registry.hasRole(registry.REGISTRAR_ROLE(), issuer)

"""Storage never behind a REC device's meter: the resources registry refuses a battery or EV
charger there, the device registration refuses a meter with active storage, and issuance
refuses the hours storage sat behind the meter."""

from __future__ import annotations

import pytest

from backend.chain.wallet_calls import WalletMustSign
from backend.core.config import Settings
from backend.recs import services as recs
from backend.recs.schemas import DeviceCreate
from backend.resources import services
from backend.resources.certified_meters import (
    refuse_device_on_storage_meter,
    storage_refuses,
    storage_until,
)
from backend.resources.errors import StorageBehindCertifiedMeter
from backend.resources.schemas import ResourceUpdate
from indexer.models import DeviceStatus
from tests.fixtures.resources import add_device, add_pv, add_resource


@pytest.mark.parametrize("status", list(DeviceStatus))
@pytest.mark.parametrize("kind", ["battery", "ev_charger"])
def test_storage_is_refused_behind_a_device_meter_whatever_its_status(metered, kind, status):
    session, owner, _other, solar, _house = metered
    add_device(session, solar.meter_id, status)
    with pytest.raises(StorageBehindCertifiedMeter) as refused:
        add_resource(session, owner, kind=kind)
    assert refused.value.extensions == {"meter_id": solar.meter_id, "device_id": 7}
    assert f"REC device 7 ({status})" in refused.value.detail


def test_pv_behind_the_device_meter_and_storage_on_its_own_meter_are_fine(metered):
    session, owner, _other, solar, house = metered
    add_device(session, solar.meter_id, DeviceStatus.APPROVED)
    pv = add_pv(session, owner)
    battery = add_resource(session, owner, meter=house.name)
    assert (pv.meter_id, battery.meter_id) == (solar.meter_id, house.meter_id)
    renamed = services.update_resource(session, owner, battery.id, ResourceUpdate(name="garage"))
    assert renamed.name == "garage" and renamed.meter_id == house.meter_id


def test_storage_cannot_move_behind_a_device_meter(metered):
    session, owner, _other, solar, house = metered
    add_device(session, solar.meter_id, DeviceStatus.APPROVED)
    charger = add_resource(session, owner, kind="ev_charger", meter=house.name)
    with pytest.raises(StorageBehindCertifiedMeter):
        services.update_resource(session, owner, charger.id, ResourceUpdate(meter=solar.name))
    session.refresh(charger)
    assert charger.meter_id == house.meter_id
    pv = add_pv(session, owner, meter=house.name)  # PV may move there
    moved = services.update_resource(session, owner, pv.id, ResourceUpdate(meter=solar.name))
    assert moved.meter_id == solar.meter_id


def test_a_device_is_refused_on_a_meter_with_active_storage_until_it_is_decommissioned(metered):
    session, owner, _other, solar, house = metered
    add_pv(session, owner)  # PV never blocks
    battery = add_resource(session, owner)
    body = DeviceCreate(
        technology="SOLAR_PV", capacity_w=8_000, grid_area="KR-SE-001", meter_id=solar.meter_id
    )
    settings = Settings()
    with pytest.raises(StorageBehindCertifiedMeter) as refused:
        recs.register_device(session, settings, None, owner, body)  # type: ignore[arg-type]
    assert refused.value.extensions == {
        "meter_id": solar.meter_id.lower(),
        "resource_id": str(battery.id),
    }
    refuse_device_on_storage_meter(session, house.meter_id)  # nothing behind the house meter
    services.decommission_resource(session, owner, battery.id)
    refuse_device_on_storage_meter(session, solar.meter_id)
    # past the check, the owner (no custodial key here) is asked to sign with their wallet
    with pytest.raises(WalletMustSign):
        recs.register_device(session, settings, None, owner, body)  # type: ignore[arg-type]


def test_issuance_refuses_every_hour_before_the_storage_left(metered):
    session, owner, _other, solar, house = metered
    assert storage_until(session, solar.meter_id) == []
    battery = add_resource(session, owner)
    add_pv(session, owner, meter=house.name)
    assert storage_until(session, solar.meter_id) == [None]
    assert storage_until(session, house.meter_id) == []  # PV only
    assert storage_refuses([None], 0) and storage_refuses([None], 2**40)
    retired = services.decommission_resource(session, owner, battery.id)
    assert retired.decommissioned_at is not None
    gone = int(retired.decommissioned_at.timestamp())
    assert storage_until(session, solar.meter_id.upper().replace("0X", "0x")) == [gone]
    assert storage_refuses([gone], gone - 3600) and not storage_refuses([gone], gone)
    assert not storage_refuses([], 0)

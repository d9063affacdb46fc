"""Storage never behind a REC device's meter: the resources registry refuses a battery or EV
charger there, the device registration refuses a meter with active storage, and issuance
refuses the hours storage sat behind the meter."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from backend.audit.chain import AuditAction
from backend.audit.models import AuditEntry
from backend.chain.wallet_calls import WalletMustSign
from backend.core.config import Settings
from backend.meters.models import MeterReading
from backend.recs import services as recs
from backend.recs.schemas import DeviceCreate
from backend.resources import services
from backend.resources.certified_meters import (
    Span,
    refuse_device_on_storage_meter,
    storage_refuses,
    storage_spans,
)
from backend.resources.errors import StorageBehindCertifiedMeter
from backend.resources.models import ResourceMove
from backend.resources.schemas import ResourceUpdate
from backend.settlement.issuance import record_due_hours
from backend.settlement.models import RecIssuance
from backend.vpp import services as vpps
from backend.vpp.models import VppMembership
from backend.vpp.schemas import VppCreate
from indexer.models import DeviceStatus
from tests.fixtures.anvil import chain_clock_ahead
from tests.fixtures.resources import WALL, add_aggregator, add_device, add_pv, add_resource


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
    renamed = services.update_resource(
        session, WALL, owner, battery.id, ResourceUpdate(name="garage")
    )
    assert renamed.name == "garage" and renamed.meter_id == house.meter_id


def test_storage_cannot_move_behind_a_device_meter(metered):
    session, owner, _other, solar, house = metered
    add_device(session, solar.meter_id, DeviceStatus.APPROVED)
    charger = add_resource(session, owner, kind="ev_charger", meter=house.name)
    with pytest.raises(StorageBehindCertifiedMeter):
        services.update_resource(session, WALL, owner, charger.id, ResourceUpdate(meter=solar.name))
    session.refresh(charger)
    assert charger.meter_id == house.meter_id
    pv = add_pv(session, owner, meter=house.name)  # PV may move there
    moved = services.update_resource(session, WALL, owner, pv.id, ResourceUpdate(meter=solar.name))
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
    services.decommission_resource(session, WALL, owner, battery.id)
    refuse_device_on_storage_meter(session, solar.meter_id)
    # past the check, the owner (no custodial key here) is asked to sign with their wallet
    with pytest.raises(WalletMustSign):
        recs.register_device(session, settings, None, owner, body)  # type: ignore[arg-type]


def test_issuance_refuses_every_hour_before_the_storage_left(metered):
    session, owner, _other, solar, house = metered
    assert storage_spans(session, solar.meter_id) == []
    battery = add_resource(session, owner)
    add_pv(session, owner, meter=house.name)
    assert storage_spans(session, solar.meter_id) == [Span(None, None)]
    assert storage_spans(session, house.meter_id) == []  # PV only
    assert storage_refuses([Span(None, None)], 0)
    assert storage_refuses([Span(None, None)], 2**40)
    retired = services.decommission_resource(session, WALL, owner, battery.id)
    assert retired.decommissioned_at is not None
    gone = int(retired.decommissioned_at.timestamp())
    upper = solar.meter_id.upper().replace("0X", "0x")
    assert storage_spans(session, upper) == [Span(None, gone)]
    assert storage_refuses([Span(None, gone)], gone - 3600)
    assert not storage_refuses([Span(None, gone)], gone)
    assert not storage_refuses([], 0)


def moved_at(session, resource_id) -> int:
    (move,) = session.exec(select(ResourceMove).where(ResourceMove.resource_id == resource_id))
    return int(move.moved_at.timestamp())


def test_a_battery_moved_off_the_pv_meter_counts_there_until_it_left(metered):
    session, owner, _other, solar, house = metered
    battery = add_resource(session, owner)  # behind the solar meter, no REC device yet
    services.update_resource(session, WALL, owner, battery.id, ResourceUpdate(meter=house.name))
    left = moved_at(session, battery.id)
    assert storage_spans(session, solar.meter_id) == [Span(None, left)]
    assert storage_spans(session, house.meter_id) == [Span(left, None)]
    spans = storage_spans(session, solar.meter_id)
    assert storage_refuses(spans, left - 3600)  # the battery sat there all hour
    assert storage_refuses(spans, left - 1800)  # the hour began before it left
    assert not storage_refuses(spans, left)  # it was behind the house meter all hour
    house_spans = storage_spans(session, house.meter_id)
    assert not storage_refuses(house_spans, left - 3600)  # registered behind solar then
    assert storage_refuses(house_spans, left - 1800)


def test_a_battery_moved_onto_the_pv_meter_counts_there_from_the_hour_it_arrived(metered):
    session, owner, _other, solar, house = metered
    battery = add_resource(session, owner, meter=house.name)
    services.update_resource(session, WALL, owner, battery.id, ResourceUpdate(meter=solar.name))
    arrived = moved_at(session, battery.id)
    add_device(session, solar.meter_id, DeviceStatus.APPROVED)  # a wallet registered on chain
    spans = storage_spans(session, solar.meter_id)
    assert spans == [Span(arrived, None)]
    assert not storage_refuses(spans, arrived - 3600)  # behind the house meter all hour
    assert storage_refuses(spans, arrived - 1800)  # it arrived during the hour
    assert storage_refuses(spans, arrived + 86_400)
    retired = services.decommission_resource(session, WALL, owner, battery.id)
    assert retired.decommissioned_at is not None
    gone = int(retired.decommissioned_at.timestamp())
    assert storage_spans(session, solar.meter_id) == [Span(arrived, gone)]
    assert storage_spans(session, house.meter_id) == [Span(None, arrived)]


def test_a_move_is_kept_and_audited_and_pv_or_a_rename_keeps_no_move(metered):
    session, owner, _other, solar, house = metered
    battery = add_resource(session, owner)
    services.update_resource(session, WALL, owner, battery.id, ResourceUpdate(name="garage"))
    services.update_resource(session, WALL, owner, battery.id, ResourceUpdate(meter=solar.name))
    assert session.exec(select(ResourceMove)).all() == []  # same meter: nothing moved
    services.update_resource(session, WALL, owner, battery.id, ResourceUpdate(meter=house.name))
    (move,) = session.exec(select(ResourceMove)).all()
    assert (move.from_meter_id, move.to_meter_id, move.moved_by) == (
        solar.meter_id,
        house.meter_id,
        owner.id,
    )
    entry = session.exec(
        select(AuditEntry).where(AuditEntry.action == AuditAction.RESOURCE_MOVED)
    ).one()
    assert entry.subject == str(battery.id) and entry.actor_id == owner.id
    assert json.loads(entry.details) == {
        "from": solar.meter_id,
        "to": house.meter_id,
        "kind": "battery",
    }
    pv = add_pv(session, owner, meter=house.name)
    services.update_resource(session, WALL, owner, pv.id, ResourceUpdate(meter=solar.name))
    assert storage_spans(session, solar.meter_id) == [Span(None, moved_at(session, battery.id))]


def issued_hours(
    session, meter_id: str, first: int, *, hours: int
) -> tuple[int, list[tuple[int, str]]]:
    """Verified export on `meter_id` in every quarter hour of `hours` hours from `first`, then
    issuance's due hours: how many it recorded, and (hour offset, status) for each."""
    meter = meter_id.lower()
    session.add_all(
        MeterReading(
            meter_id=meter,
            interval_start=first + 900 * q,
            export_wh=500,
            source="rest",
            verified=True,
            signer="0x" + "cc" * 20,
        )
        for q in range(4 * hours)
    )
    session.commit()
    report = record_due_hours(
        session, now=first + (hours + 1) * 3600, deadline_s=86_400, gate_s=0, lookback_s=86_400
    )
    rows = session.exec(select(RecIssuance).where(RecIssuance.meter_id == meter)).all()
    return report.recorded, sorted((r.hour_start - first, r.status) for r in rows)


def test_issuance_judges_each_hour_by_where_the_battery_sat(metered):
    """The battery leaves the PV meter during an hour: the hours before and the hour it left
    in are refused, the next ones issue."""
    session, owner, _other, solar, house = metered
    battery = add_resource(session, owner)
    services.update_resource(session, WALL, owner, battery.id, ResourceUpdate(meter=house.name))
    left = moved_at(session, battery.id)
    add_device(session, solar.meter_id, DeviceStatus.APPROVED)
    first = (left // 3600 - 1) * 3600
    recorded, statuses = issued_hours(session, solar.meter_id, first, hours=3)
    assert recorded == 3
    assert statuses == [
        (0, "refused"),
        (3600, "refused" if first + 3600 < left else "pending"),
        (7200, "pending"),
    ]


def test_under_the_chain_clock_moves_and_decommissions_are_stamped_in_chain_time(
    metered, fresh_anvil, pg_url, tmp_path
):
    """`make run` (GRIDLEDGER_CLOCK=chain): the chain is three days ahead of the wall. The
    battery leaves the PV meter at 18:00 chain time: issuance refuses the hour before it and
    issues the hour after it (stamped in wall time, the move would look days older and every
    simulated hour would issue); decommissioning, joining, leaving and dissolving follow the same
    clock."""
    session, owner, _other, solar, house = metered
    ahead, chain = chain_clock_ahead(fresh_anvil, pg_url, tmp_path, days=3, hour=18)
    battery = add_resource(session, owner)  # behind the solar meter
    aggregator = add_aggregator(session)
    vpp = vpps.create_vpp(session, aggregator, VppCreate(name="VPP", gridArea="KR-SE-001"))
    joined = vpps.join(session, chain, owner, vpp.id, battery.id)
    assert int(joined.joined_at.timestamp()) == ahead
    services.update_resource(session, chain, owner, battery.id, ResourceUpdate(meter=house.name))
    assert moved_at(session, battery.id) == ahead
    spans = storage_spans(session, solar.meter_id)
    assert spans == [Span(None, ahead)]
    assert storage_refuses(spans, ahead - 3600) and not storage_refuses(spans, ahead)

    add_device(session, solar.meter_id, DeviceStatus.APPROVED)
    assert issued_hours(session, solar.meter_id, ahead - 3600, hours=2)[1] == [
        (0, "refused"),
        (3600, "pending"),
    ]

    retired = services.decommission_resource(session, chain, owner, battery.id)
    assert retired.decommissioned_at is not None
    assert int(retired.decommissioned_at.timestamp()) == ahead
    assert storage_spans(session, house.meter_id) == [Span(ahead, ahead)]
    (membership,) = session.exec(
        select(VppMembership).where(VppMembership.resource_id == battery.id)
    ).all()
    assert membership.left_at is not None and int(membership.left_at.timestamp()) == ahead

    panel = add_pv(session, owner)
    vpps.join(session, chain, owner, vpp.id, panel.id)
    left = vpps.leave(session, chain, owner, vpp.id, panel.id)
    assert left.left_at is not None and int(left.left_at.timestamp()) == ahead
    dissolved = vpps.dissolve_vpp(session, chain, aggregator, vpp.id)
    assert dissolved.dissolved_at is not None
    assert int(dissolved.dissolved_at.timestamp()) == ahead

"""The DER registry's rules: owned meters only, limits that fit the kind, owner-only writes,
decommissioning, and the directory's filters."""

from __future__ import annotations

import pytest

from backend.meters.errors import MeterAccessDenied
from backend.resources import services
from backend.resources.errors import (
    ResourceAccessDenied,
    ResourceDecommissioned,
    ResourceLimitsInvalid,
)
from backend.resources.models import Capability, ResourceKind, ResourceStatus
from backend.resources.schemas import ResourceCreate, ResourceUpdate
from tests.fixtures.resources import WALL, add_pv, add_resource, resource_body


def test_battery_limits_and_soc_bounds_default_from_capacity(metered):
    session, owner, _other, solar, _house = metered
    battery = add_resource(session, owner)
    assert battery.meter_id == solar.meter_id
    assert (battery.max_charge_w, battery.max_discharge_w) == (5_000, 5_000)
    assert (battery.min_soc_wh, battery.max_soc_wh) == (0, 13_500)
    assert battery.capabilities() == [
        Capability.GENERATION,
        Capability.CONSUMPTION,
        Capability.STORAGE,
        Capability.DISPATCHABLE,
    ]


def test_pv_only_generates_and_loads_only_consume(metered):
    session, owner, *_ = metered
    pv = add_pv(session, owner)
    load = add_resource(
        session, owner, name="pool pump", kind="flexible_load", energy_capacity_wh=None
    )
    assert (pv.max_charge_w, pv.max_discharge_w) == (0, 8_000)
    assert pv.capabilities() == [Capability.GENERATION]
    assert (load.max_charge_w, load.max_discharge_w) == (5_000, 0)


def test_a_resource_cannot_sit_behind_someone_elses_meter(metered):
    session, _owner, other, *_ = metered
    with pytest.raises(MeterAccessDenied):
        add_resource(session, other)


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({"max_charge_w": 6_000}, "max_charge_w exceeds capacity_w"),
        ({"energy_capacity_wh": None}, "needs energy_capacity_wh"),
        ({"min_soc_wh": 9_000, "max_soc_wh": 8_000}, "min_soc_wh <= max_soc_wh"),
        ({"max_soc_wh": 20_000}, "max_soc_wh <= energy_capacity_wh"),
        ({"kind": "pv", "energy_capacity_wh": None, "max_charge_w": 1}, "cannot take energy"),
        ({"kind": "heat_pump", "energy_capacity_wh": None, "max_discharge_w": 1}, "cannot feed"),
        ({"kind": "heat_pump"}, "has no storage"),
        ({"max_charge_w": 0, "max_discharge_w": 0}, "nothing to dispatch"),
    ],
)
def test_limits_that_do_not_fit_are_refused(metered, override, problem):
    session, owner, *_ = metered
    with pytest.raises(ResourceLimitsInvalid) as refused:
        services.register_resource(session, owner, ResourceCreate(**resource_body(**override)))
    assert problem in refused.value.detail


def test_owner_updates_and_the_limits_are_checked_again(metered):
    session, owner, other, _solar, house = metered
    battery = add_resource(session, owner)
    updated = services.update_resource(
        session,
        WALL,
        owner,
        battery.id,
        ResourceUpdate(meter=house.name, max_discharge_w=3_000, available=False),
    )
    assert (updated.meter_id, updated.max_discharge_w, updated.available) == (
        house.meter_id,
        3_000,
        False,
    )
    with pytest.raises(ResourceLimitsInvalid):
        services.update_resource(session, WALL, owner, battery.id, ResourceUpdate(capacity_w=2_000))
    with pytest.raises(ResourceAccessDenied):
        services.update_resource(session, WALL, other, battery.id, ResourceUpdate(name="mine now"))


def test_decommissioned_resources_are_read_only_and_leave_the_directory(metered):
    session, owner, *_ = metered
    battery = add_resource(session, owner)
    gone = services.decommission_resource(session, WALL, owner, battery.id)
    assert gone.status == ResourceStatus.DECOMMISSIONED and gone.decommissioned_at is not None
    with pytest.raises(ResourceDecommissioned):
        services.update_resource(session, WALL, owner, battery.id, ResourceUpdate(name="again"))
    with pytest.raises(ResourceDecommissioned):
        services.decommission_resource(session, WALL, owner, battery.id)
    assert battery.id not in {r.id for r in services.discover(session)}


def test_directory_filters_by_type_area_capability_and_availability(metered):
    session, owner, *_ = metered
    battery = add_resource(session, owner)
    pv = add_pv(session, owner, grid_area="KR-BS-002")
    idle = add_resource(session, owner, name="spare battery", available=False)

    def ids(**filters):
        return {r.id for r in services.discover(session, **filters)} & {battery.id, pv.id, idle.id}

    assert ids(kind=ResourceKind.PV) == {pv.id}
    assert ids(grid_area="KR-SE-001") == {battery.id, idle.id}
    assert ids(capability=Capability.STORAGE) == {battery.id, idle.id}
    assert ids(capability=Capability.GENERATION) == {battery.id, pv.id, idle.id}
    assert ids(capability=Capability.DISPATCHABLE) == {battery.id, idle.id}
    assert ids(available=True) == {battery.id, pv.id}
    assert ids(kind=ResourceKind.BATTERY, available=True, grid_area="KR-SE-001") == {battery.id}

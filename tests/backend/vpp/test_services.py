"""VPP membership rules: consent per resource by its owner, one VPP at a time, grid area,
leaving and removal, dissolving; aggregated capacity, output and status."""

from __future__ import annotations

import pytest
from sqlmodel import select

from backend.resources.errors import ResourceAccessDenied, ResourceDecommissioned
from backend.resources.services import decommission_resource
from backend.vpp import services
from backend.vpp.errors import (
    NotAMember,
    ResourceInAnotherVpp,
    ResourceOutsideVppArea,
    VppAccessDenied,
    VppNotFound,
)
from backend.vpp.models import MembershipEnd, VppMembership
from backend.vpp.schemas import VppCreate, VppStatus, VppUpdate
from tests.fixtures.resources import WALL, add_aggregator, add_pv, add_resource


@pytest.fixture
def world(metered):
    session, owner, other, *_ = metered
    aggregator = add_aggregator(session)
    vpp = services.create_vpp(
        session, aggregator, VppCreate(name="Seoul VPP", gridArea="KR-SE-001")
    )
    return session, owner, other, aggregator, vpp


def test_members_join_with_consent_and_the_vpp_aggregates_them(world):
    session, owner, _other, _aggregator, vpp = world
    battery = add_resource(session, owner)
    pv = add_pv(session, owner)
    battery.output_w, battery.soc_wh = 2_000, 6_750
    pv.output_w = 3_500
    empty = services.vpp_view(session, vpp)
    assert (empty.status, empty.capacity, empty.resources) == (VppStatus.EMPTY, 0, [])
    services.join(session, WALL, owner, vpp.id, battery.id)
    membership = services.join(session, WALL, owner, vpp.id, pv.id)
    assert membership.consented_by == owner.id
    view = services.vpp_view(session, vpp)
    assert (view.capacity, view.energyCapacityWh, view.aggregatedOutput) == (13_000, 13_500, 5_500)
    assert view.status == VppStatus.OPERATIONAL
    first = view.resources[0]
    assert (first.id, first.type, first.soc, first.efficiency) == (
        battery.id,
        "battery",
        0.5,
        0.9025,
    )
    battery.available = False
    assert services.vpp_view(session, vpp).status == VppStatus.DEGRADED


def test_only_the_owner_consents_and_only_to_one_vpp(world):
    session, owner, other, aggregator, vpp = world
    battery = add_resource(session, owner)
    with pytest.raises(ResourceAccessDenied):
        services.join(session, WALL, aggregator, vpp.id, battery.id)
    with pytest.raises(ResourceAccessDenied):
        services.join(session, WALL, other, vpp.id, battery.id)
    services.join(session, WALL, owner, vpp.id, battery.id)
    rival = services.create_vpp(
        session, add_aggregator(session, "rival@example.org"), VppCreate(name="Rival")
    )
    with pytest.raises(ResourceInAnotherVpp):
        services.join(session, WALL, owner, rival.id, battery.id)
    with pytest.raises(ResourceInAnotherVpp):
        services.join(session, WALL, owner, vpp.id, battery.id)


def test_a_resource_outside_the_area_or_decommissioned_cannot_join(world):
    session, owner, _other, _aggregator, vpp = world
    far = add_pv(session, owner, grid_area="KR-BS-002")
    with pytest.raises(ResourceOutsideVppArea):
        services.join(session, WALL, owner, vpp.id, far.id)
    retired = add_resource(session, owner)
    decommission_resource(session, WALL, owner, retired.id)
    with pytest.raises(ResourceDecommissioned):
        services.join(session, WALL, owner, vpp.id, retired.id)


def test_owner_leaves_aggregator_removes_and_strangers_cannot(world):
    session, owner, other, aggregator, vpp = world
    battery, pv = add_resource(session, owner), add_pv(session, owner)
    services.join(session, WALL, owner, vpp.id, battery.id)
    services.join(session, WALL, owner, vpp.id, pv.id)
    with pytest.raises(VppAccessDenied):
        services.leave(session, WALL, other, vpp.id, battery.id)
    assert services.leave(session, WALL, owner, vpp.id, battery.id).ended_by == MembershipEnd.LEFT
    assert (
        services.leave(session, WALL, aggregator, vpp.id, pv.id).ended_by == MembershipEnd.REMOVED
    )
    with pytest.raises(NotAMember):
        services.leave(session, WALL, owner, vpp.id, battery.id)
    assert services.vpp_view(session, vpp).resources == []
    services.join(session, WALL, owner, vpp.id, battery.id)  # consent again after leaving
    history = session.exec(
        select(VppMembership).where(VppMembership.resource_id == battery.id)
    ).all()
    assert [m.ended_by for m in history] == ["left", None]


def test_decommissioning_leaves_and_dissolving_ends_every_membership(world):
    session, owner, _other, aggregator, vpp = world
    battery, pv = add_resource(session, owner), add_pv(session, owner)
    services.join(session, WALL, owner, vpp.id, battery.id)
    services.join(session, WALL, owner, vpp.id, pv.id)
    decommission_resource(session, WALL, owner, battery.id)
    assert [r.id for r in services.vpp_view(session, vpp).resources] == [pv.id]
    services.dissolve_vpp(session, WALL, aggregator, vpp.id)
    with pytest.raises(VppNotFound):
        services.get_vpp(session, vpp.id)
    ends = session.exec(select(VppMembership.ended_by).where(VppMembership.vpp_id == vpp.id)).all()
    assert sorted(ends) == ["decommissioned", "dissolved"]
    assert vpp.id not in {v.id for v in services.list_vpps(session)}


def test_only_its_aggregator_changes_a_vpp(world):
    session, owner, _other, aggregator, vpp = world
    rival = add_aggregator(session, "rival@example.org")
    with pytest.raises(VppAccessDenied):
        services.update_vpp(session, rival, vpp.id, VppUpdate(name="mine"))
    with pytest.raises(VppAccessDenied):
        services.dissolve_vpp(session, WALL, owner, vpp.id)
    assert (
        services.update_vpp(session, aggregator, vpp.id, VppUpdate(name="Gangnam")).name
        == "Gangnam"
    )

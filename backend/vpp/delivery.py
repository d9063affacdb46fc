"""How a VPP's delivery is measured: metered truth from its MEMBERS' meters.

A VPP trades from one meter id of its own, bound to its aggregator's address
(`vpp_meter_id`: the aggregator's address, then `keccak("vpp:<vpp id>")[:12]`, as every
owner-bound meter id). No device reports on that id; its export in a 15-minute slot is

    Σ over the distinct meters behind the VPP's member resources during the slot
      of the meter's VERIFIED export in the slot (meter-signed or from a metering data provider)

A resource counts for a slot when its membership overlaps the slot (joined before the slot
ends, not left before it starts); several member resources behind one meter count that meter
once. A slot where no member meter has a verified export reading is missing data (it settles
as zero after the missing-data deadline, like any meter); owner-posted (unverified) readings
and device telemetry are never counted. A member meter's export counts for the VPP while it is
a member, so a member meter should not also sell the same slots on its own account.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import func
from sqlmodel import Session, col, select

from backend.accounts.models import Account
from backend.market import orders as eip712
from backend.meters.models import MeterReading
from backend.resources.models import DerResource
from backend.vpp.models import Vpp, VppMembership
from backend.vpp.trading_models import VppOrder

SLOT = eip712.SLOT_SECONDS


def vpp_meter_id(aggregator: Account, vpp_id: uuid.UUID) -> str:
    """The 0x-hex bytes32 meter id the VPP trades from (owned by its aggregator's address)."""
    return "0x" + eip712.meter_id(aggregator.address, f"vpp:{vpp_id}").hex()


def vpp_of_meter(session: Session, meter_id: str) -> Vpp | None:
    """The VPP whose trading meter is `meter_id` (known from the orders it placed), if any;
    `vpp_orders.meter_id` is stored lower-case (`vpp_meter_id`), so the index answers."""
    vpp_id = session.exec(
        select(VppOrder.vpp_id).where(VppOrder.meter_id == meter_id.lower()).limit(1)
    ).first()
    return None if vpp_id is None else session.get(Vpp, vpp_id)


def member_meters(session: Session, vpp_id: uuid.UUID, start: int, end: int) -> dict[str, set[int]]:
    """Each meter behind a member resource during [start, end), with the slots it was a member
    for (lower-case meter ids)."""
    rows = session.exec(
        select(DerResource.meter_id, VppMembership.joined_at, VppMembership.left_at)
        .join(VppMembership, col(VppMembership.resource_id) == col(DerResource.id))
        .where(VppMembership.vpp_id == vpp_id)
    ).all()
    found: dict[str, set[int]] = {}
    for meter, joined, left in rows:
        joined_s = int(joined.timestamp())
        left_s = None if left is None else int(left.timestamp())
        for slot in range(start, end, SLOT):
            if joined_s < slot + SLOT and (left_s is None or left_s > slot):
                found.setdefault(meter.lower(), set()).add(slot)
    return found


def meter_exports(
    session: Session, meters: Iterable[str], start: int, end: int
) -> tuple[dict[tuple[str, int], int], set[tuple[str, int]]]:
    """Verified export per (meter, slot) of `meters` in [start, end), and the (meter, slot)
    pairs that have only an unverified export reading."""
    wanted = [m.lower() for m in meters]
    if not wanted:
        return {}, set()
    rows = session.exec(
        select(
            MeterReading.meter_id,
            MeterReading.interval_start,
            MeterReading.export_wh,
            MeterReading.verified,
        ).where(
            func.lower(MeterReading.meter_id).in_(wanted),
            MeterReading.interval_start >= start,
            MeterReading.interval_start < end,
        )
    ).all()
    verified: dict[tuple[str, int], int] = {}
    unverified: set[tuple[str, int]] = set()
    for meter, slot, wh, ok in rows:
        if wh is None:
            continue
        if ok:
            verified[(meter.lower(), slot)] = wh
        else:
            unverified.add((meter.lower(), slot))
    return verified, unverified


def vpp_exports(
    session: Session, vpp: Vpp, start: int, end: int
) -> tuple[dict[int, int | None], set[int]]:
    """The VPP meter's export per slot as settlement reads a meter's (see the module
    docstring), and the slots where some member meter has only unverified export."""
    members = member_meters(session, vpp.id, start, end)
    verified, unverified = meter_exports(session, members, start, end)
    per_slot: dict[int, int | None] = {}
    doubtful: set[int] = set()
    for meter, slots in members.items():
        for slot in slots:
            if (meter, slot) in verified:
                per_slot[slot] = (per_slot.get(slot) or 0) + verified[(meter, slot)]
            elif (meter, slot) in unverified:
                doubtful.add(slot)
    return per_slot, doubtful


def delivered_by_meter(session: Session, vpp: Vpp, start: int, end: int) -> dict[str, int]:
    """Each member meter's verified export over [start, end), counting only its member slots:
    the weights of the pro-rata allocation (a meter without verified export is left out)."""
    members = member_meters(session, vpp.id, start, end)
    verified, _ = meter_exports(session, members, start, end)
    delivered: dict[str, int] = {}
    for meter, slots in members.items():
        total = sum(verified.get((meter, slot), 0) for slot in slots)
        if total > 0:
            delivered[meter] = total
    return delivered

"""Settled VPP trades, paid back to the members: each trade's payout and penalty (what the
chain's `TradeSettled` reported, mirrored by the indexer) split over the member meters pro rata
to their verified export over the trade's period (backend/vpp/allocation.py, largest
remainder), one `vpp_allocations` row per trade and meter, owed to the meter's owner.

The chain pays the VPP's aggregator (the seller); these rows are what it owes each member.
Conservation: Σ payout shares = the trade's payout and Σ penalty shares = its penalty, to the
base unit. A member meter with no verified export in the period gets no row (nothing); when
nobody delivered, the penalty stays with the aggregator (its row on the VPP's meter).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func
from sqlmodel import Session, col, select

from backend.accounts.models import Account
from backend.meters.models import Meter
from backend.vpp.allocation import largest_remainder
from backend.vpp.delivery import delivered_by_meter, vpp_meter_id, vpp_of_meter
from backend.vpp.models import Vpp
from backend.vpp.services import get_vpp
from backend.vpp.trading_models import VppAllocation, VppOrder
from backend.vpp.trading_schemas import VppAllocationPublic
from indexer.models import Trade, TradeStatus


def unallocated_trades(session: Session) -> Sequence[Trade]:
    """Settled ENERGY trades sold from a VPP's meter that have no allocation yet."""
    vpp_meters = select(func.lower(VppOrder.meter_id)).distinct()
    done = select(VppAllocation.trade_id).distinct()
    return session.exec(
        select(Trade)
        .where(
            Trade.product == "energy",
            Trade.status == TradeStatus.SETTLED,
            func.lower(Trade.seller_meter).in_(vpp_meters),
            col(Trade.trade_id).not_in(done),
        )
        .order_by(col(Trade.trade_id))
    ).all()


def allocate_trade(session: Session, vpp: Vpp, trade: Trade) -> list[VppAllocation]:
    """The allocation rows of one settled trade of `vpp` (added to the session)."""
    start, end = trade.delivery_start or 0, trade.delivery_end or 0
    vpp_meter = (trade.seller_meter or "").lower()
    delivered = delivered_by_meter(session, vpp, start, end)
    payouts = largest_remainder(trade.seller_payout or 0, delivered, vpp_meter)
    penalties = largest_remainder(trade.penalty or 0, delivered, vpp_meter)
    owners = dict(
        session.exec(
            select(func.lower(Meter.meter_id), Meter.owner_id).where(
                func.lower(Meter.meter_id).in_(list(delivered))
            )
        ).all()
    )
    rows = []
    for meter in sorted(set(payouts) | set(penalties)):
        payout, penalty = payouts.get(meter, 0), penalties.get(meter, 0)
        if meter == vpp_meter and not (payout or penalty):
            continue
        row = VppAllocation(
            vpp_id=vpp.id,
            trade_id=trade.trade_id,
            meter_id=meter,
            account_id=vpp.aggregator_id if meter == vpp_meter else owners[meter],
            delivered_wh=delivered.get(meter, 0),
            payout=payout,
            penalty=penalty,
            settled_tx=trade.closed_tx,
        )
        session.add(row)
        rows.append(row)
    return rows


def allocate_settled(session: Session) -> int:
    """Allocate every settled VPP trade not yet allocated (idempotent), committing; returns
    the number of trades allocated."""
    count = 0
    for trade in unallocated_trades(session):
        vpp = vpp_of_meter(session, trade.seller_meter or "")
        if vpp is None:  # the query only returns trades of VPP meters
            continue
        allocate_trade(session, vpp, trade)
        count += 1
    session.commit()
    return count


def allocation_view(row: VppAllocation, vpp_meter: str) -> VppAllocationPublic:
    return VppAllocationPublic(
        tradeId=row.trade_id,
        meterId=row.meter_id,
        accountId=row.account_id,
        aggregator=row.meter_id == vpp_meter,
        deliveredWh=row.delivered_wh,
        payout=row.payout,
        penalty=row.penalty,
        settledTx=row.settled_tx,
    )


def list_allocations(
    session: Session, account: Account, vpp_id: uuid.UUID
) -> list[VppAllocationPublic]:
    """The VPP's allocations: all of them for its aggregator; anyone else sees only their own
    (the rows of meters they own: a member's share for its resources)."""
    vpp = get_vpp(session, vpp_id)
    query = select(VppAllocation).where(VppAllocation.vpp_id == vpp.id)
    if vpp.aggregator_id != account.id:
        query = query.where(VppAllocation.account_id == account.id)
    rows = session.exec(
        query.order_by(col(VppAllocation.trade_id), col(VppAllocation.meter_id))
    ).all()
    aggregator = session.get(Account, vpp.aggregator_id)
    vpp_meter = vpp_meter_id(aggregator, vpp.id).lower() if aggregator else ""
    return [allocation_view(r, vpp_meter) for r in rows]

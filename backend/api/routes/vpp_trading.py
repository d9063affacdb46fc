"""Aggregator trading for a VPP (`POST /v1/vpp/{id}/orders`), the pro-rata allocation of its
settled trades to member meters (`GET /v1/vpp/{id}/allocations`) and the day it is trading
(`GET /v1/vpp/{id}/timeline`: forecast, schedule and reported output per slot)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from backend.accounts.models import Role
from backend.api.deps import ChainDep, Reader, SessionDep, SettingsDep, Trader, require_role
from backend.api.problem_docs import raises
from backend.chain.wallet_calls import WalletMustSign
from backend.market.errors import InsufficientCollateral
from backend.vpp import payouts, timeline, trading
from backend.vpp.errors import VppAccessDenied, VppNotFound
from backend.vpp.trading_schemas import VppAllocationPublic, VppOrdersRequest, VppOrdersResult

router = APIRouter(prefix="/vpp", tags=["vpp"])


@router.post(
    "/{vpp_id}/orders",
    response_model=VppOrdersResult,
    responses=raises(
        VppNotFound, VppAccessDenied, trading.NoForecast, WalletMustSign, InsufficientCollateral
    ),
    dependencies=[require_role(Role.AGGREGATOR)],
)
def place_vpp_orders(
    vpp_id: uuid.UUID,
    data: VppOrdersRequest,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    account: Trader,
) -> VppOrdersResult:
    """Turn the VPP's latest forecast (surplus: offers, shortfall: bids) and the battery
    headroom of its latest schedule into orders on the VPP's trading meter, signed with your
    custodial key (`dryRun`: preview only). Each order is `placed` or `refused` (with the
    intake problem's code); wallet aggregators get `wallet-must-sign` with the terms to sign."""
    return trading.trade_vpp(session, settings, chain, account, vpp_id, data)


@router.get(
    "/{vpp_id}/allocations",
    response_model=list[VppAllocationPublic],
    responses=raises(VppNotFound),
)
def vpp_allocations(
    vpp_id: uuid.UUID, session: SessionDep, account: Reader
) -> list[VppAllocationPublic]:
    """Each settled VPP trade's payout and penalty split over the member meters pro rata to
    their verified export (largest remainder): all rows for the aggregator, your own rows
    (your meters) for a member."""
    return payouts.list_allocations(session, account, vpp_id)


@router.get(
    "/{vpp_id}/timeline", response_model=timeline.VppTimeline, responses=raises(VppNotFound)
)
def vpp_timeline(
    vpp_id: uuid.UUID, session: SessionDep, chain: ChainDep, account: Reader
) -> timeline.VppTimeline:
    """Per 15-minute slot of the latest forecast's day: forecast vs reported output of the
    members, and the latest schedule's setpoints vs what its dispatchable members reported."""
    return timeline.vpp_timeline(session, vpp_id, now=chain.now())

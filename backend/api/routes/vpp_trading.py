"""Aggregator trading for a VPP (`POST /v1/vpp/{id}/orders`) and the pro-rata allocation of its
settled trades to member meters (`GET /v1/vpp/{id}/allocations`)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from backend.accounts.models import Role
from backend.api.deps import ChainDep, Reader, SessionDep, SettingsDep, Trader, require_role
from backend.api.problem_docs import raises
from backend.chain.wallet_calls import WalletMustSign
from backend.market.errors import InsufficientCollateral
from backend.vpp import payouts, trading
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

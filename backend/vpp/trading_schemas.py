"""API shapes of aggregator trading (`POST /v1/vpp/{id}/orders`) and of the pro-rata
allocations (`GET /v1/vpp/{id}/allocations`). Token amounts and Wh quantities (uint128 on
chain) are decimal strings, times unix seconds, like the trading API."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from backend.core.json_ints import U63, AmountStr, SafeInt


class PlannedStatus(StrEnum):
    PLANNED = "planned"  # dry run: what would be placed
    PLACED = "placed"  # signed with the aggregator's custodial key and stored (order_id)
    REFUSED = "refused"  # order intake refused it (problem: its code)


class VppOrdersRequest(BaseModel):
    dryRun: bool = Field(default=False, description="preview the orders without placing them")
    forecastId: uuid.UUID | None = Field(
        default=None, description="a stored forecast of this VPP (default: the latest)"
    )
    scheduleId: uuid.UUID | None = Field(
        default=None, description="a stored schedule of this VPP (default: the latest)"
    )
    sellPrice: AmountStr | None = Field(
        default=None, ge=1, le=U63, description="per kWh for every offer (default: schedule's)"
    )
    buyPrice: AmountStr | None = Field(
        default=None, ge=1, le=U63, description="per kWh for every bid (default: schedule's)"
    )
    flexShare: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="share of battery headroom sold or used for shortfalls (default: setting)",
    )
    blockSlots: int = Field(
        default=1, ge=1, le=4, description="quarter hours per order, netted (4: hourly periods)"
    )
    deliveryBefore: SafeInt | None = Field(
        default=None, ge=0, description="trade only slots starting before this (unix s)"
    )


class FlexPart(BaseModel):
    """Headroom an order relies on: `wh` (at the meter) the battery `resourceId` discharges
    beyond its schedule in the slot starting at `slot` once the order fills."""

    resourceId: str
    slot: SafeInt
    wh: int = Field(ge=0)


class VppOrderPlan(BaseModel):
    side: Literal["sell", "buy"]
    deliveryStart: SafeInt
    deliveryEnd: SafeInt
    quantityWh: AmountStr
    price: AmountStr = Field(description="token base units per kWh")
    forecastWh: int = Field(description="the slot's forecast net output (+ feeds the grid)")
    flexibilityWh: int = Field(description="storage discharge headroom left by the schedule")
    flexWh: int = Field(default=0, description="of it, what the order relies on (committed)")
    flexSplit: list[FlexPart] = Field(
        default_factory=list, description="which battery discharges how much, per slot"
    )
    status: PlannedStatus
    orderId: str | None = None
    problem: str | None = Field(default=None, description="why intake refused it (a code)")


class VppOrdersResult(BaseModel):
    vppId: uuid.UUID
    dryRun: bool
    meterId: str = Field(description="the VPP's trading meter (its members' meters summed)")
    forecastId: uuid.UUID
    scheduleId: uuid.UUID | None
    orders: list[VppOrderPlan]


class VppAllocationPublic(BaseModel):
    tradeId: SafeInt
    meterId: str
    accountId: uuid.UUID
    aggregator: bool = Field(description="the aggregator's row: the part nobody delivered")
    deliveredWh: AmountStr
    payout: AmountStr
    penalty: AmountStr
    settledTx: str | None

"""What an aggregator traded for its VPP and how the settled money went back to the members.

`vpp_orders`: one row per order the VPP placed (signed by the aggregator's account), linked to
the forecast and schedule it was planned from, at most one per VPP, delivery slot and side.
Every order sells or buys from the VPP's trading meter (`backend.vpp.delivery.vpp_meter_id`),
whose metered truth is the sum of the members' meters.

`vpp_allocations`: one row per settled VPP trade and member meter, the member's share of the
trade's payout and penalty (largest remainder, `backend.vpp.allocation`); the part nobody
delivered (a penalty on zero delivery) is the aggregator's row, on the VPP's meter.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.core.utc import utc_now

ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")


def big() -> Column[int]:
    return Column(BigInteger, nullable=False)


class VppOrder(SQLModel, table=True):
    __tablename__ = "vpp_orders"
    __table_args__ = (
        UniqueConstraint("vpp_id", "delivery_start", "side", name="uq_vpp_orders_slot_side"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(ID_TYPE, primary_key=True, autoincrement=True)
    )
    vpp_id: uuid.UUID = Field(foreign_key="vpps.id", index=True)
    order_hash: str = Field(max_length=66, unique=True)  # signed_orders.order_hash
    forecast_id: uuid.UUID | None = Field(default=None, foreign_key="forecasts.id")
    schedule_id: uuid.UUID | None = Field(default=None, foreign_key="vpp_schedules.id")
    side: str = Field(max_length=4)  # "sell" | "buy"
    meter_id: str = Field(max_length=66, index=True)  # the VPP's trading meter
    delivery_start: int = Field(sa_column=big())
    quantity_wh: int = Field(sa_column=big())
    price: int = Field(sa_column=big())  # token base units per kWh
    forecast_wh: int = Field(sa_column=big())  # the forecast net output of the slot
    flexibility_wh: int = Field(sa_column=big())  # storage discharge headroom counted
    flex_wh: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default="0")
    )
    # of it, what the order relies on; per battery and slot: [{"resourceId", "slot", "wh"}]
    flex_split: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    patched_fill_wh: int = Field(  # the order's traded Wh its latest patch discharges for
        default=0, sa_column=Column(BigInteger, nullable=False, server_default="0")
    )
    created_at: datetime = Field(default_factory=utc_now)


class VppAllocation(SQLModel, table=True):
    __tablename__ = "vpp_allocations"
    __table_args__ = (UniqueConstraint("trade_id", "meter_id", name="uq_vpp_allocations_meter"),)

    id: int | None = Field(
        default=None, sa_column=Column(ID_TYPE, primary_key=True, autoincrement=True)
    )
    vpp_id: uuid.UUID = Field(foreign_key="vpps.id", index=True)
    trade_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    meter_id: str = Field(max_length=66)  # a member meter, or the VPP's meter (aggregator)
    account_id: uuid.UUID = Field(foreign_key="accounts.id", index=True)  # who it is owed to
    delivered_wh: int = Field(sa_column=big())  # verified export over the trade's period
    payout: int = Field(sa_column=big())  # share of the trade's gross payout
    penalty: int = Field(sa_column=big())  # share of the trade's penalty
    settled_tx: str | None = Field(default=None, max_length=66)
    created_at: datetime = Field(default_factory=utc_now)

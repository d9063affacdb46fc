"""API shapes of reconciliation records, settlement corrections and discrepancy flags."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from backend.core.json_ints import AmountStr


class SettlementCorrectionPublic(BaseModel):
    settled_metered_wh: AmountStr
    settled_delivered_wh: AmountStr
    corrected_metered_wh: AmountStr
    corrected_delivered_wh: AmountStr
    payout_delta: AmountStr
    created_at: datetime


class ReconciliationPublic(BaseModel):
    trade_id: int
    period_start: int
    period_end: int
    seller: str
    buyer: str | None = None
    seller_meter: str
    contracted_wh: AmountStr
    metered_wh: AmountStr
    allocated_wh: AmountStr
    delivered_wh: AmountStr
    shortfall_wh: AmountStr
    expected_payout: AmountStr
    expected_penalty: AmountStr
    expected_refund: AmountStr
    data_missing: bool
    unverified_slots: int = Field(
        default=0,
        description="15-minute slots of the trade that had only unverified readings "
        "(owner-posted, unsigned): settled as missing data",
    )
    status: str
    failure: str | None
    settled_tx: str | None
    computed_at: datetime
    settled_at: datetime | None
    corrections: list[SettlementCorrectionPublic] = []


class DiscrepancyFlagPublic(BaseModel):
    kind: str
    meter_id: str
    period_start: int
    detail: str
    created_at: datetime

"""API shapes of reconciliation records, settlement corrections and discrepancy flags."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class SettlementCorrectionPublic(BaseModel):
    settled_metered_wh: int
    settled_delivered_wh: int
    corrected_metered_wh: int
    corrected_delivered_wh: int
    payout_delta: int
    created_at: datetime


class ReconciliationPublic(BaseModel):
    trade_id: int
    period_start: int
    period_end: int
    seller: str
    buyer: str | None = None
    seller_meter: str
    contracted_wh: int
    metered_wh: int
    allocated_wh: int
    delivered_wh: int
    shortfall_wh: int
    expected_payout: int
    expected_penalty: int
    expected_refund: int
    data_missing: bool
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

"""Public, aggregated, read-only views for the dashboard: nothing here is account-scoped.

Everything shown is already public on chain (trades, settlements, certificates, claims);
the API only aggregates it. No meter ids or per-household series appear here.
"""

from __future__ import annotations

from pydantic import BaseModel

from backend.core.json_ints import AmountStr


class ChainSummary(BaseModel):
    indexed_block: int | None
    indexed_timestamp: int | None
    head_block: int | None


class MarketSummary(BaseModel):
    trades: int
    open_trades: int
    settled_trades: int
    reclaimed_trades: int
    energy_traded_wh: AmountStr
    energy_delivered_wh: AmountStr
    penalties: AmountStr


class RegistrySummary(BaseModel):
    devices: dict[str, int]  # by status
    capacity_w: AmountStr  # of approved devices (uint64 each on chain)
    certificates: int
    issued_wh: AmountStr
    claimed_wh: AmountStr
    claims: int


class Summary(BaseModel):
    chain: ChainSummary
    market: MarketSummary
    registry: RegistrySummary


class SettlementPublic(BaseModel):
    """One energy trade's delivery outcome (from the chain's TradeSettled/Reclaimed events)."""

    trade_id: int
    delivery_start: int
    delivery_end: int
    contracted_wh: AmountStr
    metered_wh: AmountStr | None
    delivered_wh: AmountStr | None  # min(metered, contracted)
    price: AmountStr
    payment: AmountStr
    payout: AmountStr | None
    penalty: AmountStr | None
    refund: AmountStr | None
    status: str  # scheduled | delivering | awaiting_settlement | settled | reclaimed
    settled_tx: str | None


class EnergyPeriod(BaseModel):
    """The neighbourhood per delivery period: traded vs metered-delivered, summed over trades."""

    delivery_start: int
    delivery_end: int
    trades: int
    contracted_wh: AmountStr
    delivered_wh: AmountStr
    settled_trades: int


class IssuanceHour(BaseModel):
    hour: int  # period start of the certificates, unix seconds
    certificates: int
    volume_wh: AmountStr


class ClaimPublic(BaseModel):
    claim_id: int
    certificate_id: int
    amount_wh: AmountStr
    beneficiary: str
    purpose: str
    technology: str | None
    tx_hash: str
    block_number: int
    proof: str  # the public proof endpoint of this claim

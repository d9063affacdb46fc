"""Response bodies of the energy API."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from backend.core.json_ints import AmountStr
from indexer.models import TradeStatus


class TransferStatus(StrEnum):
    """Where an ENERGY trade stands, from its delivery period and its on-chain status."""

    SCHEDULED = "scheduled"  # delivery has not started
    DELIVERING = "delivering"  # inside the delivery period
    AWAITING_SETTLEMENT = "awaiting_settlement"  # delivery over, trade still open on chain
    SETTLED = TradeStatus.SETTLED.value
    RECLAIMED = TradeStatus.RECLAIMED.value


class EnergyTransfer(BaseModel):
    id: int  # the trade id
    seller: str
    buyer: str
    seller_meter: str | None
    buyer_meter: str | None
    delivery_start: int
    delivery_end: int
    contracted_wh: AmountStr
    metered_wh: AmountStr | None  # delivered Wh as reported at settlement
    delivered_wh: AmountStr | None  # min(metered, contracted)
    price: AmountStr
    escrow: AmountStr
    payout: AmountStr | None
    penalty: AmountStr | None
    refund: AmountStr | None
    status: str  # a TransferStatus


class PeriodPosition(BaseModel):
    delivery_start: int
    delivery_end: int
    bought_wh: AmountStr
    sold_wh: AmountStr
    net_wh: AmountStr  # bought - sold


class EnergyBalance(BaseModel):
    address: str
    token_balance: AmountStr
    escrowed: AmountStr  # my payments held for open trades (as buyer)
    withdrawable: AmountStr  # my free market balance (deposits, payouts, refunds)
    locked: AmountStr  # collateral of my open energy sales, in my market balance
    positions: list[PeriodPosition]


class DepositCreate(BaseModel):
    """Token base units to move into my market balance (collateral for my energy offers)."""

    amount: AmountStr = Field(gt=0)


class Deposit(BaseModel):
    """A custodial account's `deposit(amount)` into its market balance."""

    address: str
    amount: AmountStr
    tx_hash: str
    block_number: int


class Withdrawal(BaseModel):
    """A custodial account's `withdraw()`: its whole credited balance moved to its address."""

    address: str
    amount: str = Field(pattern=r"^[0-9]{1,78}$")  # token base units (uint256, decimal string)
    tx_hash: str
    block_number: int

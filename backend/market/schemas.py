"""Request and response bodies of the trading API.

Integers follow `backend.core.json_ints`: prices, payments and Wh quantities (uint128 on
chain) and salts (uint256) are decimal strings; times, nonces, ids and counts are numbers.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from backend.chain.signatures import SIGNATURE_MAX_LENGTH, SIGNATURE_PATTERN
from backend.chain.wallet_calls import WalletCall
from backend.core.json_ints import MAX_SAFE_INTEGER, U63, U256, AmountStr, SafeInt, Uint256Str
from backend.market.models import OrderStatus

T = TypeVar("T")
SAFE = MAX_SAFE_INTEGER
HEX32 = r"^0x[0-9a-fA-F]{64}$"


class OrderPublicStatus(StrEnum):
    """An order as its maker sees it: the stored `OrderStatus` judged against chain time and
    the chain's own fills and cancels (`backend.market.order_state.public_status`)."""

    OPEN = OrderStatus.OPEN.value
    PARTIALLY_FILLED = "partially_filled"
    FILLED = OrderStatus.FILLED.value
    CANCELLED = OrderStatus.CANCELLED.value
    WITHDRAWN = OrderStatus.WITHDRAWN.value  # out of matching; cancel pending in the wallet
    EXPIRED = "expired"


class OrderTerms(BaseModel):
    """What a maker decides; maker, nonce and salt are filled in for custodial accounts."""

    side: Literal["buy", "sell"]
    product: Literal["energy", "rec"] = "energy"
    asset_id: SafeInt = Field(default=0, ge=0, le=SAFE)  # certificate id (REC), 0 for energy
    delivery_start: SafeInt = Field(default=0, ge=0, le=SAFE)  # unix seconds, 15-minute aligned
    delivery_end: SafeInt = Field(default=0, ge=0, le=SAFE)
    quantity_wh: AmountStr = Field(ge=1, le=U63)
    price: AmountStr = Field(ge=1, le=U63)  # token base units per kWh
    expiry: SafeInt | None = Field(default=None, ge=0, le=SAFE)  # default: 1 h or gate closure
    meter_id: str | None = Field(default=None, pattern=HEX32)  # default: meter:<address>


class OrderCreate(OrderTerms):
    """Custodial accounts send the terms; wallet accounts also send nonce, salt, expiry and
    the EIP-712 signature of the document from `GET /v1/trading/order-typed-data`."""

    nonce: SafeInt | None = Field(default=None, ge=0, le=SAFE)
    salt: Uint256Str | None = Field(default=None, ge=0, le=U256)
    signature: str | None = Field(  # 65 bytes from a key; any length from a contract wallet
        default=None, pattern=SIGNATURE_PATTERN, max_length=SIGNATURE_MAX_LENGTH
    )


class OrderPublic(BaseModel):
    id: str  # the EIP-712 order hash
    seq: int
    status: OrderPublicStatus
    market_id: str
    maker: str
    side: str
    product: str
    asset_id: SafeInt
    meter_id: str
    quantity_wh: AmountStr
    filled_wh: AmountStr
    remaining_wh: AmountStr
    price: AmountStr
    delivery_start: SafeInt
    delivery_end: SafeInt
    expiry: SafeInt
    nonce: SafeInt
    salt: Uint256Str
    cancel_tx: str | None
    withdrawn_reason: str | None  # why the matcher withdrew it (status `withdrawn`)
    created_at: datetime


class Accepted(BaseModel):
    """202 body of a write: what to poll and its status now."""

    id: str
    status: str
    poll: str
    tx_hash: str | None = None


class OrderCancellation(Accepted):
    """202 body of `DELETE /v1/trading/orders/{id}`. The rest of the order no longer trades
    through the operator either way:

    - `cancelled` with `tx_hash`: a custodial order, cancelled on chain with the account's key;
    - `cancelled` without: a wallet order the chain never saw, cancelled here;
    - `withdrawn`: a wallet order the chain has traded. Its signature is public in that trade,
      so any taker could still fill the rest on chain until the wallet sends `cancel_on_chain`.

    Wallet orders carry `cancel_on_chain` (the maker's `cancelOrder` call); `detail` says
    whether it is still needed."""

    cancel_on_chain: WalletCall | None = None
    detail: str | None = None


class Approvals(BaseModel):
    """Transactions of a custodial account's market approvals (gUSD allowance, certificates)."""

    token_tx: str
    registry_tx: str


class Market(BaseModel):
    id: str
    product: str
    delivery_start: int | None = None
    delivery_end: int | None = None
    gate_closure: int | None = None
    certificate_id: int | None = None
    technology: str | None = None
    grid_area: str | None = None


class PriceLevel(BaseModel):
    price: AmountStr
    quantity_wh: AmountStr
    orders: int


class OrderBook(BaseModel):
    market_id: str
    bids: list[PriceLevel]
    asks: list[PriceLevel]
    timestamp: int


class TradePublic(BaseModel):
    trade_id: int
    market_id: str
    product: str
    status: str
    seller: str
    buyer: str
    quantity_wh: AmountStr
    price: AmountStr
    payment: AmountStr
    delivery_start: int | None
    delivery_end: int | None
    certificate_id: int | None
    sell_order_hash: str
    buy_order_hash: str
    tx_hash: str
    block_number: int
    timestamp: int


class PriceBar(BaseModel):
    market_id: str
    delivery_start: int
    delivery_end: int
    open: AmountStr
    high: AmountStr
    low: AmountStr
    close: AmountStr
    volume_wh: AmountStr
    trades: int


class TypedDataResponse(BaseModel):
    typed_data: dict[str, Any]
    order_hash: str


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None

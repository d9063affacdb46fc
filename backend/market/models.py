"""Signed orders held by the API (the chain only learns their hash when they trade)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from eth_utils import to_checksum_address
from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel

from backend.core.utc import utc_now
from backend.market import orders as eip712


class OrderStatus(StrEnum):
    """A stored signed order: `open` until fully matched (`filled`) or `cancelled`.

    `withdrawn`: taken out of the operator's matching and book while its signature may still
    be valid on chain: a wallet order the chain has traded, at its maker's request (the indexer
    reports it cancelled once the wallet sends `cancelOrder`), or an order the matcher gave up
    on (`SignedOrder.withdrawn_reason` says why; see `backend.market.match_failures`)."""

    OPEN = "open"
    FILLED = "filled"
    CANCELLED = "cancelled"
    WITHDRAWN = "withdrawn"


class SignedOrder(SQLModel, table=True):
    """An EIP-712 order and its signature. `seq` gives time priority and cursor order.

    `matched_wh` counts Wh the matcher has submitted on chain (it may run ahead of the
    indexer's `market_orders.filled_wh`); `status` is an `OrderStatus`. `match_failures`
    counts the matcher's simulations this order was found at fault for; `withdrawn_reason`
    tells the maker why the matcher withdrew it.
    Expiry and fills are judged at read time against chain time and the mirror.
    """

    __tablename__ = "signed_orders"
    __table_args__ = (
        Index(
            "ix_signed_orders_book",
            "status",
            "product",
            "asset_id",
            "delivery_start",
            "side",
            "price",
        ),
        Index("ix_signed_orders_maker_seq", "maker", "seq"),
        Index("ix_signed_orders_account_seq", "account_id", "seq"),  # my orders, newest first
    )

    seq: int | None = Field(default=None, primary_key=True)
    order_hash: str = Field(max_length=66, unique=True, index=True)
    account_id: uuid.UUID = Field(foreign_key="accounts.id")  # indexed by (account_id, seq)
    custodial: bool
    maker: str = Field(max_length=42, index=True)
    side: int
    product: int
    asset_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    meter_id: str = Field(max_length=66)
    quantity_wh: int = Field(sa_column=Column(BigInteger, nullable=False))
    price: int = Field(sa_column=Column(BigInteger, nullable=False))
    delivery_start: int = Field(sa_column=Column(BigInteger, nullable=False))
    delivery_end: int = Field(sa_column=Column(BigInteger, nullable=False))
    expiry: int = Field(sa_column=Column(BigInteger, nullable=False))
    nonce: int = Field(sa_column=Column(BigInteger, nullable=False))
    salt: str = Field(max_length=80)
    signature: str = Field(sa_column=Column(Text, nullable=False))  # any length (ERC-1271)
    matched_wh: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    status: str = Field(default=OrderStatus.OPEN, max_length=12)  # OrderStatus
    cancel_tx: str | None = Field(default=None, max_length=66)
    match_failures: int = Field(default=0)
    withdrawn_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)


def to_order(row: SignedOrder) -> eip712.Order:
    """The EIP-712 order `row` holds (what the maker signed, as the contract takes it)."""
    return eip712.Order(
        maker=to_checksum_address(row.maker),
        side=row.side,
        product=row.product,
        assetId=row.asset_id,
        meterId=bytes.fromhex(row.meter_id[2:]),
        quantityWh=row.quantity_wh,
        price=row.price,
        deliveryStart=row.delivery_start,
        deliveryEnd=row.delivery_end,
        expiry=row.expiry,
        nonce=row.nonce,
        salt=int(row.salt),
    )

"""Indexer tables.

Bookkeeping: `blocks`, `indexer_cursors`, `chain_events` (raw, unique per log),
`undo_log` (before-images of derived rows for blocks that may still be reorged),
`outbox` (hand-off to workers, written in the same transaction as the rows).

Derived mirror tables (what the API and workers read): orders, trades, payouts,
market balances, token balances and allowances, devices, certificates, holdings, operator
approvals, claims, role grants.
Amounts are integers: Wh and token base units. Hashes and addresses are 0x-hex strings.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.core.utc import utc_now


class TradeStatus(StrEnum):
    """On-chain trade: ENERGY is `open` until settled or reclaimed; a REC trade swaps at once."""

    OPEN = "open"
    SETTLED = "settled"
    RECLAIMED = "reclaimed"
    SWAPPED = "swapped"


class DeviceStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    SUSPENDED = "suspended"


class MeterStatus(StrEnum):
    """A meter's status on chain (a meter never approved has no `chain_meters` row)."""

    APPROVED = "approved"
    SUSPENDED = "suspended"


def big(**kwargs: Any) -> Column[int]:
    return Column(BigInteger, nullable=kwargs.pop("nullable", False), **kwargs)


# --------------------------------------------------------------------------- bookkeeping


class Block(SQLModel, table=True):
    """A block the indexer processed; parent_hash lets it detect reorgs."""

    __tablename__ = "blocks"
    __table_args__ = (UniqueConstraint("chain_id", "number", name="uq_blocks_chain_number"),)

    id: int | None = Field(default=None, primary_key=True)
    chain_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    number: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    hash: str = Field(max_length=66)
    parent_hash: str = Field(max_length=66)
    timestamp: int = Field(sa_column=Column(BigInteger, nullable=False))
    confirmed: bool = Field(default=False)


class IndexerCursor(SQLModel, table=True):
    """The last block a named follower has fully processed, committed with its rows."""

    __tablename__ = "indexer_cursors"
    __table_args__ = (UniqueConstraint("name", "chain_id", name="uq_indexer_cursors_name_chain"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    chain_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    block_number: int = Field(sa_column=Column(BigInteger, nullable=False))
    block_hash: str = Field(max_length=66)
    block_timestamp: int = Field(default=0, sa_column=big())
    head_block: int = Field(default=0, sa_column=big())
    head_timestamp: int = Field(default=0, sa_column=big())
    updated_at: datetime = Field(default_factory=utc_now)


class ChainEvent(SQLModel, table=True):
    """Every log of our contracts, decoded; the unique key makes inserts idempotent."""

    __tablename__ = "chain_events"
    __table_args__ = (
        UniqueConstraint("chain_id", "tx_hash", "log_index", name="uq_chain_events_log"),
        Index("ix_chain_events_chain_block", "chain_id", "block_number"),
    )

    id: int | None = Field(default=None, primary_key=True)
    chain_id: int = Field(sa_column=big())
    block_number: int = Field(sa_column=big())
    block_hash: str = Field(max_length=66)
    tx_hash: str = Field(max_length=66)
    log_index: int = Field(sa_column=big())
    contract: str = Field(max_length=32)
    address: str = Field(max_length=42)
    event: str = Field(max_length=64)
    args: dict = Field(sa_column=Column(JSON, nullable=False))


class UndoEntry(SQLModel, table=True):
    """The row as it was before block `block_number` changed it (None: it did not exist)."""

    __tablename__ = "undo_log"
    __table_args__ = (Index("ix_undo_log_chain_block", "chain_id", "block_number"),)

    id: int | None = Field(default=None, primary_key=True)
    chain_id: int = Field(sa_column=big())
    block_number: int = Field(sa_column=big())
    table_name: str = Field(max_length=64)
    key: dict = Field(sa_column=Column(JSON, nullable=False))
    before: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class OutboxMessage(SQLModel, table=True):
    """A message for the workers, committed with the rows it announces; published after."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unpublished", "published_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    chain_id: int = Field(sa_column=big())
    block_number: int = Field(sa_column=big())
    topic: str = Field(max_length=64)
    payload: dict = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utc_now)
    published_at: datetime | None = Field(default=None)


# ------------------------------------------------------------------------- market mirror


class MarketOrder(SQLModel, table=True):
    """An order the chain knows of: listed on chain, filled (signed) or cancelled.

    Order terms are known for listed orders; a signed order's terms live with whoever holds
    the signature (the API), the chain only reveals its hash, fills and cancellation.
    """

    __tablename__ = "market_orders"

    order_hash: str = Field(primary_key=True, max_length=66)
    chain_id: int = Field(sa_column=big())
    maker: str | None = Field(default=None, max_length=42, index=True)
    side: int | None = None
    product: int | None = None
    asset_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    meter_id: str | None = Field(default=None, max_length=66)
    quantity_wh: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    price: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    delivery_start: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    delivery_end: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    expiry: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    nonce: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    salt: str | None = Field(default=None, max_length=80)
    listed: bool = False
    cancelled: bool = False
    filled_wh: int = Field(default=0, sa_column=big())
    block_number: int = Field(sa_column=big())


class MakerNonce(SQLModel, table=True):
    """A maker's cancel-all counter; orders signed under a lower nonce are dead."""

    __tablename__ = "maker_nonces"

    maker: str = Field(primary_key=True, max_length=42)
    nonce: int = Field(sa_column=big())
    block_number: int = Field(sa_column=big())


class Trade(SQLModel, table=True):
    """An ENERGY delivery contract (escrowed) or a REC swap (settled at once)."""

    __tablename__ = "trades"
    __table_args__ = (Index("ix_trades_delivery", "delivery_start", "delivery_end"),)

    trade_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    chain_id: int = Field(sa_column=big())
    product: str = Field(max_length=8)  # "energy" | "rec"
    status: str = Field(max_length=12, index=True)  # open | settled | reclaimed | swapped
    seller: str = Field(max_length=42, index=True)
    buyer: str = Field(max_length=42, index=True)
    seller_meter: str | None = Field(default=None, max_length=66)
    buyer_meter: str | None = Field(default=None, max_length=66)
    certificate_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    quantity_wh: int = Field(sa_column=big())
    price: int = Field(sa_column=big())
    payment: int = Field(sa_column=big())
    delivery_start: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    delivery_end: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    tolerance_bps: int | None = None
    penalty_bps: int | None = None
    # seconds after delivery_end from which the buyer may reclaim (fixed when the trade was made)
    reclaim_grace_period: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True)
    )
    sell_order_hash: str = Field(max_length=66)
    buy_order_hash: str = Field(max_length=66)
    delivered_wh: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    seller_payout: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    penalty: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    buyer_refund: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_tx: str = Field(max_length=66)
    created_block: int = Field(sa_column=big())
    created_at: int = Field(sa_column=big())  # block timestamp
    closed_tx: str | None = Field(default=None, max_length=66)
    closed_block: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class Payout(SQLModel, table=True):
    """A credit to (or withdrawal from) an account's pull balance in the market."""

    __tablename__ = "payouts"

    id: str = Field(primary_key=True, max_length=80)  # "<tx_hash>:<log_index>:<account role>"
    chain_id: int = Field(sa_column=big())
    account: str = Field(max_length=42, index=True)
    # deposit | lock (collateral locked at a fill: negative) | settlement (gross - penalty +
    # unlocked collateral) | refund (unused escrow + penalty) | reclaim (escrow; the seller's
    # `unlock`) | withdrawal; amounts move the free balance
    kind: str = Field(max_length=16)
    trade_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    amount: int = Field(sa_column=big())
    tx_hash: str = Field(max_length=66)
    block_number: int = Field(sa_column=big())


class MarketBalance(SQLModel, table=True):
    """An account's balance in the market: what it can withdraw right now (free) and the
    collateral of its open ENERGY sales (locked); their sum is EnergyMarket.balanceOf."""

    __tablename__ = "market_balances"

    account: str = Field(primary_key=True, max_length=42)
    withdrawable: int = Field(sa_column=big())
    locked: int = Field(default=0, sa_column=big(server_default="0"))
    block_number: int = Field(sa_column=big())


class TokenBalance(SQLModel, table=True):
    """Payment-token balance per account, from Transfer events."""

    __tablename__ = "token_balances"

    account: str = Field(primary_key=True, max_length=42)
    balance: int = Field(sa_column=big())
    block_number: int = Field(sa_column=big())


class TokenAllowance(SQLModel, table=True):
    """What `owner` lets one of our contracts (`spender`: EnergyMarket, DemandResponse) pull of
    its GridUSD: the last `Approval` less the pulls seen since (indexer/handlers/allowances.py).

    Never above the chain's `allowance(owner, spender)`: OpenZeppelin's transferFrom lowers an
    allowance without an Approval event, and every pull of our contracts shows as a Transfer
    into the contract or (a REC swap) in the `CertificatesTraded` that pays its seller; a
    transfer the owner sends the contract itself lowers the mirrored figure too (below the
    chain's, never above). `allowance` is capped at BIGINT's largest value; `unlimited`: the
    owner approved `type(uint256).max`, which transferFrom leaves as it is. No row: no Approval
    seen (none made, or made before the mirror had this table): ask the chain."""

    __tablename__ = "token_allowances"

    owner: str = Field(primary_key=True, max_length=42)
    spender: str = Field(primary_key=True, max_length=42)
    allowance: int = Field(sa_column=big())
    unlimited: bool = False
    block_number: int = Field(sa_column=big())


class MarketParameter(SQLModel, table=True):
    """Current settlement terms (tolerance, penalty, grace period) as last changed on chain."""

    __tablename__ = "market_parameters"

    name: str = Field(primary_key=True, max_length=32)
    value: int = Field(sa_column=big())
    block_number: int = Field(sa_column=big())


# ----------------------------------------------------------------------- registry mirror


class ChainMeter(SQLModel, table=True):
    """A meter as RECRegistry knows it (MeterApproved / MeterSuspended); the owner is the top
    20 bytes of the id. Off-chain registration (backend `meters`) comes first, as pending."""

    __tablename__ = "chain_meters"

    meter_id: str = Field(primary_key=True, max_length=66)
    chain_id: int = Field(sa_column=big())
    owner: str = Field(max_length=42, index=True)
    status: str = Field(max_length=12)  # approved | suspended
    capacity_w: int = Field(sa_column=big())
    signing_key: str = Field(max_length=42)
    block_number: int = Field(sa_column=big())


class Device(SQLModel, table=True):
    __tablename__ = "devices"

    device_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    chain_id: int = Field(sa_column=big())
    owner: str = Field(max_length=42, index=True)
    technology: str = Field(max_length=32)
    capacity_w: int = Field(sa_column=big())
    grid_area: str = Field(max_length=32)
    commissioned_at: int = Field(sa_column=big())
    meter_id: str = Field(max_length=66, index=True)
    status: str = Field(max_length=12)  # pending | approved | suspended
    block_number: int = Field(sa_column=big())


class Certificate(SQLModel, table=True):
    __tablename__ = "certificates"
    __table_args__ = (Index("ix_certificates_device_period", "device_id", "period_start"),)

    certificate_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    chain_id: int = Field(sa_column=big())
    device_id: int = Field(sa_column=big())
    period_start: int = Field(sa_column=big())
    period_end: int = Field(sa_column=big())
    volume_wh: int = Field(sa_column=big())
    claimed_wh: int = Field(default=0, sa_column=big())
    supply_wh: int = Field(sa_column=big())
    issued_to: str = Field(max_length=42)
    issued_at: int = Field(sa_column=big())
    issued_tx: str = Field(max_length=66)
    evidence_root: str | None = Field(default=None, max_length=66)  # Merkle root of its readings
    revoked: bool = False
    revoke_reason: str | None = None
    block_number: int = Field(sa_column=big())


class Holding(SQLModel, table=True):
    __tablename__ = "holdings"

    certificate_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    account: str = Field(primary_key=True, max_length=42)
    balance_wh: int = Field(sa_column=big())
    block_number: int = Field(sa_column=big())


class OperatorApproval(SQLModel, table=True):
    """ERC-1155 `setApprovalForAll(operator, approved)` of `account` on RECRegistry, as the last
    `ApprovalForAll` event left it (every change emits one: exact)."""

    __tablename__ = "operator_approvals"

    account: str = Field(primary_key=True, max_length=42)
    operator: str = Field(primary_key=True, max_length=42)
    approved: bool
    block_number: int = Field(sa_column=big())


class CertificateTransfer(SQLModel, table=True):
    """Transfers and burns (claims) of certificate Wh; a mint is the certificate row itself."""

    __tablename__ = "certificate_transfers"

    id: str = Field(primary_key=True, max_length=80)  # "<tx_hash>:<log_index>:<position>"
    chain_id: int = Field(sa_column=big())
    certificate_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    operator: str = Field(max_length=42)
    from_account: str = Field(max_length=42)
    to_account: str = Field(max_length=42)
    amount_wh: int = Field(sa_column=big())
    tx_hash: str = Field(max_length=66)
    block_number: int = Field(sa_column=big())


class Claim(SQLModel, table=True):
    __tablename__ = "claims"

    claim_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    chain_id: int = Field(sa_column=big())
    certificate_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    holder: str = Field(max_length=42, index=True)
    amount_wh: int = Field(sa_column=big())
    beneficiary: str
    purpose: str
    consumption_start: int = Field(sa_column=big())
    consumption_end: int = Field(sa_column=big())
    location: str = Field(max_length=66)
    tx_hash: str = Field(max_length=66)
    log_index: int = Field(sa_column=big())
    block_number: int = Field(sa_column=big())


class RoleGrant(SQLModel, table=True):
    __tablename__ = "role_grants"

    contract: str = Field(primary_key=True, max_length=32)
    role: str = Field(primary_key=True, max_length=66)
    account: str = Field(primary_key=True, max_length=42)
    active: bool
    changed_by: str = Field(max_length=42)
    block_number: int = Field(sa_column=big())


class DrChainProgram(SQLModel, table=True):
    """A DemandResponse program: its utility, remaining budget and whether it is closed."""

    __tablename__ = "dr_chain_programs"

    program_id: str = Field(primary_key=True, max_length=66)  # bytes32 hex (the backend's UUID)
    chain_id: int = Field(sa_column=big())
    utility: str = Field(max_length=42)
    budget: int = Field(sa_column=big())
    closed: bool = False
    block_number: int = Field(sa_column=big())


class DrChainResult(SQLModel, table=True):
    """One ParticipantSettled: a participant's incentive and penalty in one DR event."""

    __tablename__ = "dr_chain_results"
    __table_args__ = (UniqueConstraint("event_id", "participant", name="uq_dr_chain_results"),)

    id: str = Field(primary_key=True, max_length=80)  # "<tx_hash>:<log_index>"
    chain_id: int = Field(sa_column=big())
    program_id: str = Field(max_length=66, index=True)
    event_id: str = Field(max_length=66)
    participant: str = Field(max_length=42, index=True)
    incentive: int = Field(sa_column=big())
    penalty_owed: int = Field(sa_column=big())
    penalty_charged: int = Field(sa_column=big())
    tx_hash: str = Field(max_length=66)
    block_number: int = Field(sa_column=big())


class DrChainBalance(SQLModel, table=True):
    """An account's withdrawable DemandResponse balance (incentives, released collateral, a
    closed program's budget), and its collateral summed over programs."""

    __tablename__ = "dr_chain_balances"

    account: str = Field(primary_key=True, max_length=42)
    withdrawable: int = Field(sa_column=big())
    collateral: int = Field(sa_column=big())
    block_number: int = Field(sa_column=big())

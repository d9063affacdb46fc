from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class RelayedTxStatus(StrEnum):
    """A relayed transaction as the node reports it."""

    PENDING = "pending"  # known to the node, not mined yet
    SUCCEEDED = "succeeded"  # mined with receipt status 1
    REVERTED = "reverted"  # mined with receipt status 0


class RawTransaction(BaseModel):
    """A transaction signed by the caller's own wallet (`eth_signTransaction` output)."""

    raw_transaction: str = Field(max_length=262_146, pattern=r"^0x([0-9a-fA-F]{2})+$")


class TransactionStatus(BaseModel):
    tx_hash: str
    status: RelayedTxStatus
    block_number: int | None = None
    gas_used: int | None = None

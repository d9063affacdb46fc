from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class RawTransaction(BaseModel):
    """A transaction signed by the caller's own wallet (`eth_signTransaction` output)."""

    raw_transaction: str = Field(max_length=262_146, pattern=r"^0x([0-9a-fA-F]{2})+$")


class TransactionStatus(BaseModel):
    tx_hash: str
    status: Literal["pending", "succeeded", "reverted"]
    block_number: int | None = None
    gas_used: int | None = None

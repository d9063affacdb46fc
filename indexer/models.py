"""Indexer bookkeeping tables: the blocks it has seen and where each follower stands."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


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
    updated_at: datetime = Field(default_factory=utc_now)

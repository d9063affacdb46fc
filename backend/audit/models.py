"""The audit log: one row per security-relevant event, each committing to the one before it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Column, Integer, Text
from sqlmodel import Field, SQLModel

from backend.core.utc import utc_now

ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")
GENESIS_HASH = "0" * 64


class AuditEntry(SQLModel, table=True):
    """`hash` = SHA-256 over `prev_hash` and this entry's canonical JSON (`backend.audit.chain`),
    so changing or deleting a row breaks every hash after it."""

    __tablename__ = "audit_log"

    id: int | None = Field(
        default=None, sa_column=Column(ID_TYPE, primary_key=True, autoincrement=True)
    )
    at: datetime = Field(default_factory=utc_now)
    actor_id: uuid.UUID | None = Field(default=None, index=True)
    action: str = Field(max_length=64, index=True)
    subject: str = Field(default="", max_length=254)
    details: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # canonical JSON
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)

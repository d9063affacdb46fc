"""Dead letters: messages that could not be processed, kept for operators instead of being
redelivered forever (a poison MQTT message would otherwise come back on every reconnect)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, Text
from sqlmodel import Field, SQLModel

from backend.core.utc import utc_now

ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")


class DeadLetter(SQLModel, table=True):
    """One distinct poison message: the same topic and payload seen again only bumps `count`
    and `last_seen`. `payload` is the raw bytes, cut to the configured cap; `payload_size` is
    the size received."""

    __tablename__ = "dead_letters"

    id: int | None = Field(
        default=None, sa_column=Column(ID_TYPE, primary_key=True, autoincrement=True)
    )
    source: str = Field(max_length=16, index=True)  # "mqtt", "rest", ...
    topic: str = Field(max_length=512)  # the MQTT topic, or the API route
    digest: str = Field(max_length=64, unique=True)  # SHA-256 of source, topic and full payload
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    payload_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    first_seen: datetime = Field(default_factory=utc_now)
    last_seen: datetime = Field(default_factory=utc_now)
    count: int = Field(default=1, sa_column=Column(BigInteger, nullable=False))

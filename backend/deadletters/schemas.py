"""API shape of a dead letter (operators)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class DeadLetterPublic(BaseModel):
    id: int
    source: str
    topic: str = Field(description="the MQTT topic the message came on, or the API route")
    reason: str
    payload_base64: str = Field(description="the raw payload (cut to the configured cap)")
    payload_preview: str = Field(description="the payload as UTF-8 (invalid bytes replaced)")
    payload_size: int = Field(description="bytes received (the stored payload may be shorter)")
    first_seen: datetime
    last_seen: datetime
    count: int = Field(description="times this exact message was received")

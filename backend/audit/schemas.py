from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditEntryPublic(BaseModel):
    id: int
    at: datetime
    actor_id: uuid.UUID | None
    action: str
    subject: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditVerification(BaseModel):
    intact: bool
    entries: int
    head_hash: str  # record it elsewhere: deleting the newest entries shows against it
    first_broken_id: int | None
    problem: str | None

"""What the VEN management API (`/v1/openadr/vens`) reads and returns."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field


class VenCreate(BaseModel):
    ven_name: str = Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9._:-]+$")
    account_id: uuid.UUID  # the account the VEN acts for
    meter_ids: list[str] = Field(default_factory=list, max_length=100)
    ven_id: str | None = Field(default=None, min_length=1, max_length=64)
    # a certificate from another CA: its SHA-256 fingerprint (hex); none: the development CA
    # issues one and the answer carries it with its private key (shown once)
    cert_fingerprint: str | None = Field(default=None, pattern=r"^([0-9a-fA-F]{2}:?){32}$")


class VenPublic(BaseModel):
    ven_id: str
    ven_name: str
    account_id: uuid.UUID
    meter_ids: list[str]
    cert_fingerprint: str
    active: bool
    registered: bool
    registered_at: datetime | None
    last_contact_at: datetime | None
    last_poll_at: datetime | None
    revoked_at: datetime | None
    status: dict[str, object] | None
    status_at: datetime | None
    created_at: datetime


class VenEnrolled(VenPublic):
    certificate_pem: str | None = None
    private_key_pem: str | None = None  # only in this answer, never stored
    ca_pem: str | None = None

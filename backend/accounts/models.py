"""Accounts and their machine credentials."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from backend.core.utc import utc_now


class AccountKind(StrEnum):
    """Who holds the account's chain key: the API (encrypted at rest) or the user's wallet."""

    CUSTODIAL = "custodial"
    WALLET = "wallet"


class Role(StrEnum):
    PARTICIPANT = "participant"
    REGISTRAR = "registrar"
    ISSUER = "issuer"
    OPERATOR = "operator"  # market operator
    METER_DATA_PROVIDER = "meter_data_provider"  # head-end: readings it posts are verified
    AGGREGATOR = "aggregator"  # runs VPPs of members' DERs (with each owner's consent)
    ADMIN = "admin"


class Scope(StrEnum):
    """What an API key may do; a session (JWT) may do everything its roles allow."""

    READ = "read"  # every authenticated GET
    TRADE = "trade"  # orders, approvals, deposits, withdrawals, relayed transactions
    CERTIFICATES = "certificates"  # devices, certificate transfers and claims
    METER_DATA = "meter-data"  # meters, readings and the consumption/generation series


ALL_SCOPES = [scope.value for scope in Scope]


class AccountBase(SQLModel):
    email: str | None = Field(default=None, max_length=254, unique=True, index=True)
    display_name: str = Field(default="", max_length=120)


class Account(AccountBase, table=True):
    """A GridLedger account: custodial (server-held chain key) or wallet (own key, SIWE)."""

    __tablename__ = "accounts"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    kind: str = Field(default=AccountKind.CUSTODIAL, max_length=16)  # AccountKind
    roles: list[str] = Field(
        default_factory=lambda: [Role.PARTICIPANT.value], sa_column=Column(JSON, nullable=False)
    )
    address: str = Field(max_length=42, unique=True, index=True)  # lower-case 0x address
    password_hash: str | None = Field(default=None, max_length=255)
    encrypted_key: str | None = Field(default=None)  # AES-256-GCM, custodial accounts only
    active: bool = True
    created_at: datetime = Field(default_factory=utc_now)

    def has_role(self, role: Role) -> bool:
        return role.value in self.roles or Role.ADMIN.value in self.roles

    def has_role_any(self, roles: Iterable[str]) -> bool:
        return any(self.has_role(Role(r)) for r in roles)


class ApiKey(SQLModel, table=True):
    """A machine credential: only a hash of the secret is stored."""

    __tablename__ = "api_keys"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    account_id: uuid.UUID = Field(foreign_key="accounts.id", index=True)
    name: str = Field(max_length=80)
    prefix: str = Field(max_length=16, index=True)  # shown to users to tell keys apart
    secret_hash: str = Field(max_length=128)
    scopes: list[str] = Field(
        default_factory=lambda: [Scope.READ.value], sa_column=Column(JSON, nullable=False)
    )
    created_at: datetime = Field(default_factory=utc_now)
    expires_at: datetime | None = None  # None: keys made before scopes existed
    revoked_at: datetime | None = None


class RefreshToken(SQLModel, table=True):
    """A rotating refresh token: only its SHA-256 is stored; using it revokes it (rotation).

    Tokens of one login share a `family`; presenting a revoked token revokes the whole family
    (a stolen token that was already rotated cannot be replayed).
    """

    __tablename__ = "refresh_tokens"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    account_id: uuid.UUID = Field(foreign_key="accounts.id", index=True)
    family: uuid.UUID = Field(index=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    expires_at: datetime
    created_at: datetime = Field(default_factory=utc_now)
    revoked_at: datetime | None = None


class SiweNonce(SQLModel, table=True):
    """A single-use nonce handed out for a Sign-In with Ethereum (EIP-4361) message."""

    __tablename__ = "siwe_nonces"

    nonce: str = Field(primary_key=True, max_length=64)
    expires_at: datetime
    used_at: datetime | None = None

"""Request and response bodies of the accounts and auth API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, Field

from backend.accounts.models import Role, Scope
from backend.chain.signatures import SIGNATURE_MAX_LENGTH, SIGNATURE_PATTERN

EMAIL = r"^[^@\s\x00-\x1f]{1,64}@[^@\s\x00-\x1f]{1,189}\.[A-Za-z]{2,}$"
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"  # no control characters (PostgreSQL text refuses NUL)


class RegisterRequest(BaseModel):
    email: str = Field(pattern=EMAIL, max_length=254)
    password: str = Field(min_length=10, max_length=256)
    display_name: str = Field(default="", max_length=120, pattern=PRINTABLE)


class LoginRequest(BaseModel):
    email: str = Field(pattern=EMAIL, max_length=254)
    password: str = Field(min_length=1, max_length=256)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=256)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int  # seconds until the access token expires


class AccountPublic(BaseModel):
    id: uuid.UUID
    email: str | None
    display_name: str
    kind: str
    roles: list[str]
    address: str
    created_at: datetime


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=80, pattern=PRINTABLE)
    # what the key may do (least privilege by default); a key made with an API key gets at
    # most that key's scopes and never outlives it
    scopes: list[Scope] = Field(default=[Scope.READ], min_length=1, max_length=len(Scope))
    # when the key stops working: in the future, at most `api_key_max_days` ahead; omitted:
    # `api_key_default_days` from now
    expires_at: AwareDatetime | None = None


class ApiKeyPublic(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[Scope]
    created_at: datetime
    expires_at: datetime | None  # null: a key issued before keys expired
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str  # shown once


class SiweNonceResponse(BaseModel):
    nonce: str
    domain: str
    chain_id: int
    expires_at: datetime


class SiweVerifyRequest(BaseModel):
    message: str = Field(min_length=1, max_length=4096)
    signature: str = Field(  # 65 bytes from a key; any length from a contract wallet (ERC-1271)
        pattern=SIGNATURE_PATTERN, max_length=SIGNATURE_MAX_LENGTH
    )


class AccountAdminView(AccountPublic):
    """An account as administrators see it."""

    active: bool


class RolesUpdate(BaseModel):
    """The account's complete role list (replaces the current one)."""

    roles: list[Role] = Field(max_length=len(Role))


class ChainRoleChange(BaseModel):
    """An on-chain grant or revocation an API role change implies. The API cannot send it (it
    holds no admin key): the admin schedules it on the timelock with `command`."""

    contract: str  # RECRegistry | EnergyMarket
    role: str  # REGISTRAR_ROLE | ISSUER_ROLE | OPERATOR_ROLE | METER_DATA_PROVIDER_ROLE
    granted: bool  # false: revoked
    command: str  # python -m backend.admin propose grant-role|revoke-role ROLE ADDRESS


class RolesUpdated(BaseModel):
    account: AccountAdminView
    # on-chain role changes that would make the chain match (not sent: see ChainRoleChange)
    chain_changes_needed: list[ChainRoleChange]

"""Dependencies routes take: `SessionDep`, `SettingsDep`, `CurrentAccount`, `require_role`.

Authentication: `Authorization: Bearer <JWT access token>` or `X-API-Key: <key>`.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import uuid

from fastapi import Depends, Header
from sqlmodel import Session, select

from backend.accounts.models import Account, ApiKey, Role
from backend.accounts.security import decode_access_token, hash_api_key
from backend.core.config import Settings, get_settings
from backend.core.db import get_engine
from backend.core.errors import PermissionDenied, Unauthenticated


def get_db() -> Iterator[Session]:
    with Session(get_engine()) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def current_account(
    session: SessionDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Account:
    account = None
    if authorization and authorization.lower().startswith("bearer "):
        claims = decode_access_token(authorization[7:].strip(), settings)
        account = session.get(Account, uuid.UUID(claims["sub"]))
    elif x_api_key:
        key = session.exec(
            select(ApiKey).where(ApiKey.secret_hash == hash_api_key(x_api_key), ApiKey.revoked_at.is_(None))
        ).first()
        account = session.get(Account, key.account_id) if key else None
    else:
        raise Unauthenticated("send a Bearer access token or an X-API-Key header")
    if account is None or not account.active:
        raise Unauthenticated("unknown or inactive account")
    return account


CurrentAccount = Annotated[Account, Depends(current_account)]


def require_role(role: Role):
    """Dependency factory: the current account must hold `role` (admins hold every role)."""

    def check(account: CurrentAccount) -> Account:
        if not account.has_role(role):
            raise PermissionDenied(f"requires the {role.value} role", required_role=role.value)
        return account

    return Depends(check)

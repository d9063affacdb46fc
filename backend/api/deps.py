"""Dependencies routes take: `SessionDep`, `SettingsDep`, `StoreDep`, `ChainDep`,
`CurrentAccount`, `require_role`.

Authentication: `Authorization: Bearer <JWT access token>` or `X-API-Key: <key>`.
Authorization: every authenticated route declares the scope it needs by the account type it
takes — `Reader`, `Trader`, `CertificateHolder`, `MeterDataAccount` (`require_scope`), or
`SessionAccount` for what no API key may do. A session (JWT) has every scope; an API key only
its own (403 `insufficient-scope`), until it expires (401 `api-key-expired`).
Every authenticated request counts against the account's per-minute rate limit (Redis
when configured, else an in-process store: see backend/core/kv.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC
from typing import Annotated

from fastapi import Depends, Header, Request, params
from sqlmodel import Session, col, select

from backend.accounts.errors import ApiKeyExpired, InsufficientScope
from backend.accounts.models import Account, ApiKey, Role, Scope
from backend.accounts.security import decode_access_token, hash_api_key
from backend.chain.contracts import Chain, chain_for
from backend.core.config import Settings, get_settings
from backend.core.db import get_engine
from backend.core.errors import PermissionDenied, RateLimited, Unauthenticated
from backend.core.kv import KeyValueStore, store_for
from backend.core.utc import utc_now


def get_db() -> Iterator[Session]:
    with Session(get_engine()) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_store(settings: SettingsDep) -> KeyValueStore:
    return store_for(settings)


StoreDep = Annotated[KeyValueStore, Depends(get_store)]


def get_chain(settings: SettingsDep) -> Chain:
    return chain_for(settings)


ChainDep = Annotated[Chain, Depends(get_chain)]


def enforce_rate_limit(store: KeyValueStore, account_id: uuid.UUID, limit: int) -> None:
    """Fixed one-minute window per account."""
    window = int(time.time() // 60)
    count = store.incr_window(f"gridledger:rl:{account_id}:{window}", 61)
    if count > limit:
        raise RateLimited(
            f"more than {limit} requests this minute", retry_after=60 - int(time.time()) % 60
        )


def authenticate(
    session: Session,
    settings: Settings,
    store: KeyValueStore,
    authorization: str | None,
    x_api_key: str | None,
) -> tuple[Account, ApiKey | None]:
    """The caller's account and the API key it used (None for a session token)."""
    account, key = None, None
    if authorization and authorization.lower().startswith("bearer "):
        claims = decode_access_token(authorization[7:].strip(), settings)
        try:
            account = session.get(Account, uuid.UUID(str(claims.get("sub"))))
        except ValueError as exc:
            raise Unauthenticated("invalid access token subject") from exc
    elif x_api_key:
        key = session.exec(
            select(ApiKey).where(
                ApiKey.secret_hash == hash_api_key(x_api_key), col(ApiKey.revoked_at).is_(None)
            )
        ).first()
        if key is not None and key.expires_at is not None:
            expires_at = key.expires_at
            expires_at = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)
            if expires_at <= utc_now():
                raise ApiKeyExpired(f"API key {key.prefix} expired at {expires_at.isoformat()}")
        account = session.get(Account, key.account_id) if key else None
    else:
        raise Unauthenticated("send a Bearer access token or an X-API-Key header")
    if account is None or not account.active:
        raise Unauthenticated("unknown or inactive account")
    # Roles are this row's, never the token's `roles` claim: a change applies to the next request.
    enforce_rate_limit(store, account.id, settings.rate_limit_per_minute)
    return account, key


def current_account(
    session: Session,
    settings: Settings,
    store: KeyValueStore,
    authorization: str | None = None,
    x_api_key: str | None = None,
) -> Account:
    """The caller's account, whichever credential it sent (for checks outside a route: the
    health report, idempotent replays)."""
    return authenticate(session, settings, store, authorization, x_api_key)[0]


def request_account(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Account:
    """The caller's account, for routes (`CurrentAccount`); keeps the API key it used (None for
    a session token) for `require_scope`."""
    account, key = authenticate(session, settings, store, authorization, x_api_key)
    request.state.api_key = key  # None for a session token
    return account


CurrentAccount = Annotated[Account, Depends(request_account)]


def caller_api_key(request: Request, account: CurrentAccount) -> ApiKey | None:
    """The API key the request authenticated with; None for a session (JWT)."""
    key: ApiKey | None = getattr(request.state, "api_key", None)
    return key


CallerKey = Annotated[ApiKey | None, Depends(caller_api_key)]


def require_scope(scope: Scope | None) -> params.Depends:
    """Dependency factory: an API key must carry `scope`; None: no API key may (sessions
    only). The check is tagged `required_scope` so a test can list every route's."""

    def check(account: CurrentAccount, key: CallerKey) -> Account:
        if key is None:
            return account
        if scope is None:
            raise InsufficientScope(
                "API keys cannot do this: sign in (a session token)", required_scopes=[]
            )
        if scope.value not in key.scopes:
            raise InsufficientScope(
                f"the API key lacks the {scope.value} scope", required_scopes=[scope.value]
            )
        return account

    check.required_scope = scope  # type: ignore[attr-defined]
    return Depends(check)


Reader = Annotated[Account, require_scope(Scope.READ)]
Trader = Annotated[Account, require_scope(Scope.TRADE)]
CertificateHolder = Annotated[Account, require_scope(Scope.CERTIFICATES)]
MeterDataAccount = Annotated[Account, require_scope(Scope.METER_DATA)]
SessionAccount = Annotated[Account, require_scope(None)]


def require_role(role: Role) -> params.Depends:
    """Dependency factory: the current account must hold `role` (admins hold every role)."""

    def check(account: CurrentAccount) -> Account:
        if not account.has_role(role):
            raise PermissionDenied(f"requires the {role.value} role", required_role=role.value)
        return account

    return Depends(check)

"""Dependencies routes take: `SessionDep`, `SettingsDep`, `RedisDep`, `ChainDep`,
`CurrentAccount`, `require_role`.

Authentication: `Authorization: Bearer <JWT access token>` or `X-API-Key: <key>`.
Every authenticated request counts against the account's per-minute rate limit (Redis).
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from functools import lru_cache
from typing import Annotated

import redis

from fastapi import Depends, Header
from sqlmodel import Session, select

from backend.accounts.models import Account, ApiKey, Role
from backend.accounts.security import decode_access_token, hash_api_key
from backend.core.config import Settings, get_settings
from backend.core.db import get_engine
from backend.chain.contracts import Chain, chain_for
from backend.core.errors import PermissionDenied, RateLimited, ServiceUnavailable, Unauthenticated


def get_db() -> Iterator[Session]:
    with Session(get_engine()) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


@lru_cache(maxsize=8)
def redis_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def get_redis(settings: SettingsDep) -> redis.Redis:
    return redis_for(settings.redis_url)


RedisDep = Annotated[redis.Redis, Depends(get_redis)]


def get_chain(settings: SettingsDep) -> Chain:
    return chain_for(settings)


ChainDep = Annotated[Chain, Depends(get_chain)]


def enforce_rate_limit(client: redis.Redis, account_id: uuid.UUID, limit: int) -> None:
    """Fixed one-minute window per account: INCR + EXPIRE in one round trip."""
    window = int(time.time() // 60)
    key = f"gridledger:rl:{account_id}:{window}"
    try:
        count, _ = client.pipeline(transaction=False).incr(key).expire(key, 61).execute()
    except redis.RedisError as exc:
        raise ServiceUnavailable("rate limiter unavailable (Redis)") from exc
    if count > limit:
        raise RateLimited(f"more than {limit} requests this minute", retry_after=60 - int(time.time()) % 60)


def current_account(
    session: SessionDep,
    settings: SettingsDep,
    redis_client: RedisDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Account:
    account = None
    if authorization and authorization.lower().startswith("bearer "):
        claims = decode_access_token(authorization[7:].strip(), settings)
        try:
            account = session.get(Account, uuid.UUID(str(claims.get("sub"))))
        except ValueError as exc:
            raise Unauthenticated("invalid access token subject") from exc
    elif x_api_key:
        key = session.exec(
            select(ApiKey).where(ApiKey.secret_hash == hash_api_key(x_api_key), ApiKey.revoked_at.is_(None))
        ).first()
        account = session.get(Account, key.account_id) if key else None
    else:
        raise Unauthenticated("send a Bearer access token or an X-API-Key header")
    if account is None or not account.active:
        raise Unauthenticated("unknown or inactive account")
    enforce_rate_limit(redis_client, account.id, settings.rate_limit_per_minute)
    return account


CurrentAccount = Annotated[Account, Depends(current_account)]


def require_role(role: Role):
    """Dependency factory: the current account must hold `role` (admins hold every role)."""

    def check(account: CurrentAccount) -> Account:
        if not account.has_role(role):
            raise PermissionDenied(f"requires the {role.value} role", required_role=role.value)
        return account

    return Depends(check)

"""Dependencies routes take: `SessionDep`, `SettingsDep`, `StoreDep`, `ChainDep`,
`CurrentAccount`, `require_role`.

Authentication: `Authorization: Bearer <JWT access token>` or `X-API-Key: <key>`.
Authorization: every authenticated route declares the scope it needs by the account type it
takes — `Reader`, `Trader`, `CertificateHolder`, `MeterDataAccount` (`require_scope`), or
`SessionAccount` for what no API key may do. A session (JWT) has every scope; an API key only
its own (403 `insufficient-scope`), until it expires (401 `api-key-expired`).
Every authenticated request counts against the account's per-minute rate limit (Redis
when configured, else an in-process store: see backend/core/kv.py).

The hot read routes are `async def` and take `AsyncReader` (the same checks as `Reader`, see
`authenticate_async`) and `ReadsDep` (backend/core/async_db.py): nothing they depend on waits
for a worker thread.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request, params
from sqlalchemy import bindparam
from sqlalchemy import select as select_core
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from backend.accounts.errors import ApiKeyExpired, InsufficientScope
from backend.accounts.models import Account, ApiKey, Role, Scope
from backend.accounts.security import decode_access_token, hash_api_key
from backend.chain.contracts import Chain, chain_for
from backend.core.async_db import AsyncReads, Query, Reads, SyncReads, async_pool
from backend.core.config import Settings, get_settings
from backend.core.db import get_engine, table_of
from backend.core.errors import PermissionDenied, RateLimited, Unauthenticated
from backend.core.kv import KeyValueStore, incr_window_async, store_for
from backend.core.utc import utc_now

T = TypeVar("T")


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


def _token_subject(authorization: str, settings: Settings) -> uuid.UUID:
    claims = decode_access_token(authorization[7:].strip(), settings)
    try:
        return uuid.UUID(str(claims.get("sub")))
    except ValueError as exc:
        raise Unauthenticated("invalid access token subject") from exc


def _is_bearer(authorization: str | None) -> bool:
    return bool(authorization and authorization.lower().startswith("bearer "))


def _check_unexpired(key: ApiKey) -> None:
    if key.expires_at is not None:
        expires_at = key.expires_at
        expires_at = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)
        if expires_at <= utc_now():
            raise ApiKeyExpired(f"API key {key.prefix} expired at {expires_at.isoformat()}")


def _check_active(account: Account | None) -> Account:
    if account is None or not account.active:
        raise Unauthenticated("unknown or inactive account")
    return account


def _rate_limit_key(account_id: uuid.UUID) -> str:
    return f"gridledger:rl:{account_id}:{int(time.time() // 60)}"


def _check_rate(count: int, limit: int) -> None:
    if count > limit:
        raise RateLimited(
            f"more than {limit} requests this minute", retry_after=60 - int(time.time()) % 60
        )


def enforce_rate_limit(store: KeyValueStore, account_id: uuid.UUID, limit: int) -> None:
    """Fixed one-minute window per account."""
    _check_rate(store.incr_window(_rate_limit_key(account_id), 61), limit)


def authenticate(
    session: Session,
    settings: Settings,
    store: KeyValueStore,
    authorization: str | None,
    x_api_key: str | None,
) -> tuple[Account, ApiKey | None]:
    """The caller's account and the API key it used (None for a session token)."""
    account, key = None, None
    if authorization and _is_bearer(authorization):
        account = session.get(Account, _token_subject(authorization, settings))
    elif x_api_key:
        key = session.exec(
            select(ApiKey).where(
                ApiKey.secret_hash == hash_api_key(x_api_key), col(ApiKey.revoked_at).is_(None)
            )
        ).first()
        if key is not None:
            _check_unexpired(key)
        account = session.get(Account, key.account_id) if key else None
    else:
        raise Unauthenticated("send a Bearer access token or an X-API-Key header")
    account = _check_active(account)
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


def check_scope(scope: Scope | None, account: Account, key: ApiKey | None) -> Account:
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


def require_scope(scope: Scope | None) -> params.Depends:
    """Dependency factory: an API key must carry `scope`; None: no API key may (sessions
    only). The check is tagged `required_scope` so a test can list every route's."""

    def check(account: CurrentAccount, key: CallerKey) -> Account:
        return check_scope(scope, account, key)

    check.required_scope = scope  # type: ignore[attr-defined]
    return Depends(check)


Reader = Annotated[Account, require_scope(Scope.READ)]
Trader = Annotated[Account, require_scope(Scope.TRADE)]
CertificateHolder = Annotated[Account, require_scope(Scope.CERTIFICATES)]
MeterDataAccount = Annotated[Account, require_scope(Scope.METER_DATA)]
SessionAccount = Annotated[Account, require_scope(None)]

# ------------------------------------------------------------------ the async read path
# Hot read routes are `async def` and take these: no dependency of theirs runs on a worker
# thread (with PostgreSQL; SQLite reads through the sync session in the thread pool).


async def app_settings(request: Request) -> Settings:
    """`get_settings()` (or the app's override of it) without a worker thread."""
    provider = request.app.dependency_overrides.get(get_settings, get_settings)
    settings: Settings = provider()
    return settings


AppSettingsDep = Annotated[Settings, Depends(app_settings)]


async def get_reads(request: Request, settings: AppSettingsDep) -> AsyncIterator[Reads]:
    """`AsyncReads` on this loop's pool for `settings.database_url`; without one (SQLite),
    `SyncReads` on the session `get_db` (or the app's override of it) provides."""
    pool = async_pool(settings)
    if pool is not None:
        yield AsyncReads(pool)
        return
    produced = request.app.dependency_overrides.get(get_db, get_db)()
    if isinstance(produced, Session):
        yield SyncReads(produced)
        return
    try:
        yield SyncReads(await run_in_threadpool(next, produced))
    finally:
        await run_in_threadpool(produced.close)


ReadsDep = Annotated[Reads, Depends(get_reads)]

_ACCOUNTS, _API_KEYS = table_of(Account), table_of(ApiKey)
_ACCOUNT_BY_ID = Query(
    select_core(_ACCOUNTS).where(_ACCOUNTS.c.id == bindparam("id")), generic_plan=True
)
_KEY = "key_"  # the API key's columns in `_KEY_AND_ACCOUNT` rows
_KEY_AND_ACCOUNT = Query(
    select_core(*(c.label(_KEY + c.name) for c in _API_KEYS.c), *_ACCOUNTS.c)
    .join(_ACCOUNTS, _ACCOUNTS.c.id == _API_KEYS.c.account_id)
    .where(_API_KEYS.c.secret_hash == bindparam("secret_hash"), _API_KEYS.c.revoked_at.is_(None)),
    generic_plan=True,  # unique keys: one plan fits every value
)


async def _count_request(settings: Settings, account_id: uuid.UUID) -> None:
    count = await incr_window_async(settings, _rate_limit_key(account_id), 61)
    _check_rate(count, settings.rate_limit_per_minute)


async def _by_token(reads: Reads, settings: Settings, authorization: str) -> Account:
    """The token's account; its rate-limit count is taken meanwhile (the id is in the token)."""
    account_id = _token_subject(authorization, settings)
    rows, _ = await asyncio.gather(
        reads.all(_ACCOUNT_BY_ID, {"id": account_id}), _count_request(settings, account_id)
    )
    return _check_active(Account(**rows[0]._asdict()) if rows else None)


async def _by_api_key(reads: Reads, settings: Settings, x_api_key: str) -> tuple[Account, ApiKey]:
    """The key and its account in one round trip, then the account's rate-limit count."""
    rows = await reads.all(_KEY_AND_ACCOUNT, {"secret_hash": hash_api_key(x_api_key)})
    if not rows:
        raise Unauthenticated("unknown or inactive account")
    columns = rows[0]._asdict()
    key = ApiKey(**{k[len(_KEY) :]: v for k, v in columns.items() if k.startswith(_KEY)})
    _check_unexpired(key)
    account = _check_active(Account(**{k: v for k, v in columns.items() if not k.startswith(_KEY)}))
    await _count_request(settings, account.id)
    return account, key


async def authenticate_async(
    reads: Reads, settings: Settings, authorization: str | None, x_api_key: str | None
) -> tuple[Account, ApiKey | None]:
    """`authenticate` for async routes: the same checks, rows read through `reads`, the rate
    limit counted in the same store. The account comes back detached (read it, do not add it
    to a session)."""
    if authorization and _is_bearer(authorization):
        return await _by_token(reads, settings, authorization), None
    if x_api_key:
        return await _by_api_key(reads, settings, x_api_key)
    raise Unauthenticated("send a Bearer access token or an X-API-Key header")


async def request_account_async(
    request: Request,
    reads: ReadsDep,
    settings: AppSettingsDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Account:
    """`request_account` for async routes."""
    account, key = await authenticate_async(reads, settings, authorization, x_api_key)
    request.state.api_key = key
    return account


def require_scope_async(scope: Scope) -> params.Depends:
    """`require_scope` for async routes (tagged `required_scope` the same way)."""

    async def check(
        request: Request, account: Annotated[Account, Depends(request_account_async)]
    ) -> Account:
        return check_scope(scope, account, getattr(request.state, "api_key", None))

    check.required_scope = scope  # type: ignore[attr-defined]
    return Depends(check)


AsyncReader = Annotated[Account, require_scope_async(Scope.READ)]
AsyncTrader = Annotated[Account, require_scope_async(Scope.TRADE)]


class SyncSessions:
    """What an async route falls back to for sync work: `run(work)` calls `work(session)` on a
    worker thread with a session `get_db` (or the app's override of it) provides."""

    def __init__(self, request: Request) -> None:
        self.provider = request.app.dependency_overrides.get(get_db, get_db)

    async def run(self, work: Callable[[Session], T]) -> T:
        def call() -> T:
            produced = self.provider()
            if isinstance(produced, Session):
                return work(produced)
            try:
                return work(next(produced))
            finally:
                produced.close()

        return await run_in_threadpool(call)


async def sync_sessions(request: Request) -> SyncSessions:
    return SyncSessions(request)


SyncSessionsDep = Annotated[SyncSessions, Depends(sync_sessions)]
AsyncMeterDataAccount = Annotated[Account, require_scope_async(Scope.METER_DATA)]

READ_CLOCK_MAX_AGE_S = 1.0


# Refreshes of chain time in flight, by (event loop, chain): one node round trip at a time.
_CLOCK_REFRESHES: dict[tuple[int, int], asyncio.Future[int]] = {}


async def read_chain_time(settings: Settings) -> int:
    """Chain time for reads, at most `READ_CLOCK_MAX_AGE_S` old. The node is asked (on a worker
    thread) once for all the requests that need it, and ahead of time: past half that age a
    request starts a refresh and goes on with the value it has. Before, each of 64 concurrent
    requests sent its own `eth_getBlockByNumber` once a second and waited for a thread — the
    order book's p99."""
    chain = chain_for(settings)
    now = chain.recent_now(READ_CLOCK_MAX_AGE_S)
    if now is not None:
        if chain.recent_now(READ_CLOCK_MAX_AGE_S / 2) is None:
            _clock_refresh(chain)
        return now
    return await asyncio.shield(_clock_refresh(chain))


def _clock_refresh(chain: Chain) -> asyncio.Future[int]:
    """The refresh of `chain`'s time in flight on this loop, started if there is none."""
    key = (id(asyncio.get_running_loop()), id(chain))
    refresh = _CLOCK_REFRESHES.get(key)
    if refresh is None:
        refresh = _CLOCK_REFRESHES[key] = asyncio.ensure_future(
            run_in_threadpool(chain.now, READ_CLOCK_MAX_AGE_S / 2)
        )
        refresh.add_done_callback(_clock_refreshed(key))
    return refresh


def _clock_refreshed(key: tuple[int, int]) -> Callable[[asyncio.Future[int]], None]:
    def done(refresh: asyncio.Future[int]) -> None:
        _CLOCK_REFRESHES.pop(key, None)
        if not refresh.cancelled():
            refresh.exception()  # retrieved: a request that waits for it re-raises it

    return done


async def chain_time(settings: AppSettingsDep) -> int:
    """`read_chain_time` as a dependency."""
    return await read_chain_time(settings)


ChainTimeDep = Annotated[int, Depends(chain_time)]


def require_role(role: Role) -> params.Depends:
    """Dependency factory: the current account must hold `role` (admins hold every role)."""

    def check(account: CurrentAccount) -> Account:
        if not account.has_role(role):
            raise PermissionDenied(f"requires the {role.value} role", required_role=role.value)
        return account

    return Depends(check)

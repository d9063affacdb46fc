"""`/v1/auth/...`: registration, login, token refresh/logout, SIWE, API keys."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status

from backend.accounts import services, siwe
from backend.accounts.errors import InvalidCredentials
from backend.accounts.login_backoff import LoginBackoff
from backend.accounts.models import Account
from backend.accounts.schemas import (
    AccountPublic,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    LoginRequest,
    RefreshRequest,
    RegisterRequest,
    SiweNonceResponse,
    SiweVerifyRequest,
    TokenPair,
)
from backend.api.deps import CallerKey, CurrentAccount, Reader, SessionDep, SettingsDep, StoreDep
from backend.api.links import api_key_links, links, registration_links, token_links
from backend.api.problem_docs import raises
from backend.api.throttle import ThrottledByClientIp
from backend.core.errors import RateLimited, Unauthenticated

router = APIRouter(prefix="/auth", tags=["auth"])
ANYONE = [ThrottledByClientIp]  # routes anyone may call: throttled per client IP


def account_public(account: Account) -> AccountPublic:
    return AccountPublic.model_validate(account, from_attributes=True)


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=AccountPublic,
    responses=raises(RateLimited) | links(201, "The account", **registration_links),
    dependencies=ANYONE,
)
def register(body: RegisterRequest, session: SessionDep, settings: SettingsDep) -> AccountPublic:
    """A custodial account; the API generates and keeps its chain key (never shown)."""
    return account_public(
        services.register(
            session,
            settings,
            email=body.email,
            password=body.password,
            display_name=body.display_name,
        )
    )


@router.post(
    "/login",
    response_model=TokenPair,
    responses=raises(Unauthenticated, RateLimited) | links(200, "The tokens", **token_links),
    dependencies=ANYONE,
)
def login(
    body: LoginRequest, session: SessionDep, settings: SettingsDep, store: StoreDep
) -> TokenPair:
    """After repeated failures for one email, further attempts wait (429 with Retry-After)."""
    backoff = LoginBackoff(store, settings, body.email)
    backoff.check()
    try:
        tokens = services.login(session, settings, email=body.email, password=body.password)
    except InvalidCredentials:
        backoff.failed()
        raise
    backoff.succeeded()
    return tokens


@router.post(
    "/refresh",
    response_model=TokenPair,
    responses=raises(Unauthenticated, RateLimited) | links(200, "The tokens", **token_links),
    dependencies=ANYONE,
)
def refresh(body: RefreshRequest, session: SessionDep, settings: SettingsDep) -> TokenPair:
    """Rotate the refresh token: the one presented stops working."""
    return services.refresh(session, settings, body.refresh_token)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=raises(RateLimited),
    dependencies=ANYONE,
)
def logout(body: RefreshRequest, session: SessionDep) -> None:
    """Revoke the refresh token and every token rotated from the same login."""
    services.logout(session, body.refresh_token)


@router.get(
    "/siwe/nonce",
    response_model=SiweNonceResponse,
    responses=raises(RateLimited),
    dependencies=ANYONE,
)
def siwe_nonce(request: Request, session: SessionDep, settings: SettingsDep) -> SiweNonceResponse:
    """A single-use nonce, and the domain and chain id the message must name."""
    row = services.new_siwe_nonce(session, settings)
    host = request.headers.get("host", "")
    domains = siwe.accepted_domains(settings, host=host)
    return SiweNonceResponse(
        nonce=row.nonce,
        domain=host if host in domains else (domains[0] if domains else host),
        chain_id=settings.chain_id,
        expires_at=row.expires_at,
    )


@router.post(
    "/siwe/verify",
    response_model=TokenPair,
    responses=raises(Unauthenticated, RateLimited),
    dependencies=ANYONE,
)
def siwe_verify(
    body: SiweVerifyRequest, request: Request, session: SessionDep, settings: SettingsDep
) -> TokenPair:
    """Sign-In with Ethereum: an EIP-4361 message with a nonce from `/siwe/nonce`, for the
    domain the API is served on (`GRIDLEDGER_SIWE_DOMAINS`, else this request's Host), its
    URI on that domain, issued within `GRIDLEDGER_SIWE_ISSUED_AT_WINDOW_S`, for this chain;
    signed by the address's key or accepted by its ERC-1271 `isValidSignature`."""
    _, tokens = services.siwe_login(
        session,
        settings,
        message=body.message,
        signature=body.signature,
        host=request.headers.get("host", ""),
    )
    return tokens


@router.get("/me", response_model=AccountPublic)
def me(account: Reader) -> AccountPublic:
    return account_public(account)


@router.post(
    "/api-keys",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses=links(201, "The key, shown once", **api_key_links),
)
def create_api_key(
    body: ApiKeyCreate,
    account: CurrentAccount,
    caller_key: CallerKey,
    session: SessionDep,
    settings: SettingsDep,
) -> ApiKeyCreated:
    """The key is shown once; only its hash is stored. It may do what its `scopes` say
    (default `read`) until `expires_at`. Any credential may make keys, but one made with an
    API key gets none of the scopes that key lacks (403 `insufficient-scope`) and expires no
    later than it."""
    row, key = services.create_api_key(
        session,
        settings,
        account,
        name=body.name,
        scopes=body.scopes,
        expires_at=body.expires_at,
        made_with=caller_key,
    )
    return ApiKeyCreated(
        key=key, **ApiKeyPublic.model_validate(row, from_attributes=True).model_dump()
    )


@router.get("/api-keys", response_model=list[ApiKeyPublic])
def list_api_keys(account: Reader, session: SessionDep) -> list[ApiKeyPublic]:
    return [
        ApiKeyPublic.model_validate(r, from_attributes=True)
        for r in services.list_api_keys(session, account)
    ]


@router.delete("/api-keys/{key_id}", response_model=ApiKeyPublic)
def revoke_api_key(key_id: uuid.UUID, account: CurrentAccount, session: SessionDep) -> ApiKeyPublic:
    """Any credential of the account may revoke its keys (it only takes access away)."""
    return ApiKeyPublic.model_validate(
        services.revoke_api_key(session, account, key_id), from_attributes=True
    )

"""Accounts: registration, password and SIWE login, rotating refresh tokens, API keys."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from eth_account.messages import defunct_hash_message
from eth_utils import to_checksum_address
from sqlmodel import Session, col, select, update

from backend.accounts import siwe
from backend.accounts.custody import new_custodial_key
from backend.accounts.errors import (
    EmailTaken,
    InsufficientScope,
    InvalidCredentials,
    InvalidRefreshToken,
    InvalidSiweMessage,
    SiweInvalidSignature,
    SiweNonceInvalid,
)
from backend.accounts.models import (
    Account,
    AccountKind,
    ApiKey,
    RefreshToken,
    Scope,
    SiweNonce,
)
from backend.accounts.schemas import TokenPair
from backend.accounts.security import (
    create_access_token,
    hash_password,
    new_api_key,
    password_needs_rehash,
    verify_password,
)
from backend.audit import chain as audit
from backend.audit.chain import AuditAction
from backend.chain.signatures import signed_by
from backend.core.config import Settings
from backend.core.errors import InvalidInput, NotFound
from backend.core.utc import utc_now


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ------------------------------------------------------------------ registration / login


def register(
    session: Session, settings: Settings, *, email: str, password: str, display_name: str = ""
) -> Account:
    """A custodial participant with a fresh server-held chain key."""
    email = email.lower()
    if session.exec(select(Account).where(Account.email == email)).first():
        raise EmailTaken(f"{email} is already registered")
    account = Account(
        email=email,
        display_name=display_name,
        kind=AccountKind.CUSTODIAL,
        password_hash=hash_password(password),
        address="",
    )
    account.address, account.encrypted_key = new_custodial_key(account.id, settings)
    session.add(account)
    session.commit()
    session.refresh(account)
    return account


def login(session: Session, settings: Settings, *, email: str, password: str) -> TokenPair:
    account = session.exec(select(Account).where(Account.email == email.lower())).first()
    stored = account.password_hash if account is not None else None
    refusal = None
    if account is None or not verify_password(password, stored):
        refusal = InvalidCredentials()
    elif not account.active:
        refusal = InvalidCredentials("account is disabled")
    if refusal is not None:
        audit.record(
            session,
            AuditAction.LOGIN_FAILED,
            actor_id=account.id if account else None,
            subject=email.lower(),
            details={"reason": refusal.detail},
        )
        session.commit()
        raise refusal
    assert account is not None
    if stored and password_needs_rehash(stored):
        account.password_hash = hash_password(password)
        session.add(account)
    audit.record(session, AuditAction.LOGIN, actor_id=account.id, subject=email.lower())
    return issue_tokens(session, settings, account)


# ------------------------------------------------------------------------ tokens


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_tokens(
    session: Session, settings: Settings, account: Account, family: uuid.UUID | None = None
) -> TokenPair:
    refresh = "glr_" + secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            account_id=account.id,
            family=family or uuid.uuid4(),
            token_hash=_token_hash(refresh),
            expires_at=utc_now() + timedelta(days=settings.refresh_token_days),
        )
    )
    session.commit()
    access = create_access_token(
        account.id, account.roles, settings, minutes=settings.access_token_minutes
    )
    return TokenPair(
        access_token=access, refresh_token=refresh, expires_in=settings.access_token_minutes * 60
    )


def _stored_refresh_token(session: Session, token: str) -> RefreshToken | None:
    return session.exec(
        select(RefreshToken).where(RefreshToken.token_hash == _token_hash(token))
    ).first()


def refresh(session: Session, settings: Settings, token: str) -> TokenPair:
    """Rotate: the presented token is revoked and a new one of the same family issued.
    Re-use of an already rotated token revokes the whole family."""
    stored = _stored_refresh_token(session, token)
    if stored is None:
        raise InvalidRefreshToken()
    if stored.revoked_at is not None:
        _revoke_family(session, stored.family)
        raise InvalidRefreshToken(
            "refresh token was already used; every session of this login is revoked"
        )
    if _aware(stored.expires_at) <= utc_now():
        raise InvalidRefreshToken("refresh token expired")
    account = session.get(Account, stored.account_id)
    if account is None or not account.active:
        raise InvalidRefreshToken("account is disabled")
    rotated = session.exec(  # one winner when the same token is presented twice at once
        update(RefreshToken)
        .where(col(RefreshToken.id) == stored.id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=utc_now())
    )
    if rotated.rowcount != 1:
        session.rollback()
        _revoke_family(session, stored.family)
        raise InvalidRefreshToken(
            "refresh token was already used; every session of this login is revoked"
        )
    return issue_tokens(session, settings, account, family=stored.family)


def logout(session: Session, token: str) -> None:
    stored = _stored_refresh_token(session, token)
    if stored is not None:
        _revoke_family(session, stored.family)


def _revoke_family(session: Session, family: uuid.UUID) -> None:
    now = utc_now()
    for row in session.exec(
        select(RefreshToken).where(
            RefreshToken.family == family, col(RefreshToken.revoked_at).is_(None)
        )
    ):
        row.revoked_at = now
        session.add(row)
    session.commit()


# ---------------------------------------------------------------------- API keys


def create_api_key(
    session: Session,
    settings: Settings,
    account: Account,
    *,
    name: str,
    scopes: Iterable[Scope] = (Scope.READ,),
    expires_at: datetime | None = None,
    made_with: ApiKey | None = None,
) -> tuple[ApiKey, str]:
    """A key with `scopes` until `expires_at` (default: `api_key_default_days` from now).
    A key made with another key (`made_with`) gets no scope that one lacks and expires no
    later: a leaked key cannot mint a stronger or longer-lived one."""
    now = utc_now()
    wanted = sorted({Scope(scope).value for scope in scopes})
    if expires_at is None:
        expires_at = now + timedelta(days=settings.api_key_default_days)
    if expires_at <= now or expires_at > now + timedelta(days=settings.api_key_max_days):
        raise InvalidInput(
            f"expires_at must be in the future and at most {settings.api_key_max_days} days away"
        )
    if made_with is not None:
        missing = sorted(set(wanted) - set(made_with.scopes))
        if missing:
            raise InsufficientScope(
                f"this API key cannot grant scopes it lacks: {', '.join(missing)}",
                required_scopes=missing,
            )
        if made_with.expires_at is not None:
            expires_at = min(expires_at, _aware(made_with.expires_at))
    key, prefix, secret_hash = new_api_key()
    row = ApiKey(
        account_id=account.id,
        name=name,
        prefix=prefix,
        secret_hash=secret_hash,
        scopes=wanted,
        expires_at=expires_at,
    )
    session.add(row)
    audit.record(
        session,
        AuditAction.API_KEY_CREATED,
        actor_id=account.id,
        subject=prefix,
        details={"name": name, "scopes": wanted, "expires_at": expires_at.isoformat()},
    )
    session.commit()
    session.refresh(row)
    return row, key


def list_api_keys(session: Session, account: Account) -> list[ApiKey]:
    return list(
        session.exec(
            select(ApiKey).where(ApiKey.account_id == account.id).order_by(col(ApiKey.created_at))
        )
    )


def revoke_api_key(session: Session, account: Account, key_id: uuid.UUID) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None or row.account_id != account.id:
        raise NotFound(f"no API key {key_id}")
    if row.revoked_at is None:
        row.revoked_at = utc_now()
        session.add(row)
        audit.record(session, AuditAction.API_KEY_REVOKED, actor_id=account.id, subject=row.prefix)
        session.commit()
        session.refresh(row)
    return row


# ------------------------------------------------------- Sign-In with Ethereum (EIP-4361)


def new_siwe_nonce(session: Session, settings: Settings) -> SiweNonce:
    row = SiweNonce(
        nonce=secrets.token_hex(16),
        expires_at=utc_now() + timedelta(seconds=settings.siwe_nonce_ttl_s),
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def siwe_login(
    session: Session, settings: Settings, *, message: str, signature: str, host: str
) -> tuple[Account, TokenPair]:
    """Verify a signed EIP-4361 message sent to `host` (the request's Host: domain, URI, time
    and chain as `backend.accounts.siwe` checks them); the nonce is used once; the signature
    is the address's key's, or — a contract wallet — one its ERC-1271 `isValidSignature`
    accepts for the EIP-191 hash of the message. The wallet account is created on first
    sign-in."""
    fields = siwe.parse(message)
    now = utc_now()
    siwe.check(fields, settings, host=host, now=now)
    nonce = session.get(SiweNonce, fields.nonce)
    if nonce is None or nonce.used_at is not None or _aware(nonce.expires_at) <= now:
        raise SiweNonceInvalid("unknown, used or expired nonce")
    address = to_checksum_address(fields.address)
    if not signed_by(
        settings,
        address,
        digest=defunct_hash_message(text=message),
        signature=bytes.fromhex(signature[2:]),
    ):
        raise SiweInvalidSignature(
            f"the signature is not {address}'s (its key, or its ERC-1271 isValidSignature)"
        )
    used = session.exec(  # single use, also between concurrent sign-ins
        update(SiweNonce)
        .where(col(SiweNonce.nonce) == fields.nonce, col(SiweNonce.used_at).is_(None))
        .values(used_at=now)
    )
    if used.rowcount != 1:
        session.rollback()
        raise SiweNonceInvalid("unknown, used or expired nonce")
    account = session.exec(select(Account).where(Account.address == address.lower())).first()
    if account is None:
        account = Account(kind=AccountKind.WALLET, address=address.lower())
        session.add(account)
        session.flush()
    audit.record(
        session,
        AuditAction.SIWE_LOGIN,
        actor_id=account.id,
        subject=address,
        details={"active": account.active, "domain": fields.domain},
    )
    session.commit()
    session.refresh(account)
    if not account.active:
        raise InvalidSiweMessage("account is disabled")
    return account, issue_tokens(session, settings, account)

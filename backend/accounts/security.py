"""Password hashing (Argon2id at OWASP's parameters; scrypt hashes of earlier releases still
verify and are re-hashed at the next login), API key hashing (SHA-256 of a high-entropy
secret), JWTs."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from backend.core.config import Settings
from backend.core.errors import Unauthenticated

# OWASP Password Storage Cheat Sheet: Argon2id, m = 19 MiB, t = 2, p = 1.
_ARGON2 = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_LEGACY_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
# Verified against when the email is unknown, so a login costs the same either way.
_UNKNOWN_ACCOUNT_HASH = _ARGON2.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _ARGON2.hash(password)


def verify_password(password: str, stored: str | None) -> bool:
    if not stored:
        _spend_a_verification(password)
        return False
    if stored.startswith("scrypt$"):
        try:
            _, salt_hex, digest_hex = stored.split("$")
            digest = hashlib.scrypt(
                password.encode(), salt=bytes.fromhex(salt_hex), **_LEGACY_SCRYPT
            )
        except ValueError:
            return False
        return hmac.compare_digest(digest.hex(), digest_hex)
    try:
        return _ARGON2.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _spend_a_verification(password: str) -> None:
    with contextlib.suppress(VerificationError):
        _ARGON2.verify(_UNKNOWN_ACCOUNT_HASH, password)


def password_needs_rehash(stored: str) -> bool:
    """Stored with an older scheme or weaker parameters than today's."""
    return stored.startswith("scrypt$") or _ARGON2.check_needs_rehash(stored)


def new_api_key() -> tuple[str, str, str]:
    """(full key shown once, prefix, stored hash)."""
    prefix = "glk_" + secrets.token_hex(4)
    key = f"{prefix}.{secrets.token_urlsafe(32)}"
    return key, prefix, hash_api_key(key)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_access_token(
    account_id: uuid.UUID, roles: list[str], settings: Settings, minutes: int = 15
) -> str:
    """A signed access token. `roles` is a hint for clients; the API authorizes with the
    account's roles in the database (see api/deps.py), so revoking one needs no new token."""
    now = datetime.now(UTC)
    claims = {
        "sub": str(account_id),
        "roles": roles,
        "iat": now,
        "exp": now + timedelta(minutes=minutes),
        "typ": "access",
    }
    return jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm="HS256")


def decode_access_token(token: str, settings: Settings) -> dict[str, Any]:
    try:
        claims = jwt.decode(token, settings.secret_key.get_secret_value(), algorithms=["HS256"])
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("access token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated("invalid access token") from exc
    if claims.get("typ") != "access":
        raise Unauthenticated("not an access token")
    return claims

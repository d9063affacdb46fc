"""Password hashing (scrypt), API key hashing (SHA-256 of a high-entropy secret), JWTs."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from backend.core.config import Settings
from backend.core.errors import Unauthenticated

_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        _, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), **_SCRYPT)
    return hmac.compare_digest(digest.hex(), digest_hex)


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

"""Opaque cursors for keyset pagination: the last key seen, base64url-encoded."""
from __future__ import annotations

import base64
import binascii

from backend.core.errors import InvalidInput


class InvalidCursor(InvalidInput):
    code = "invalid-cursor"
    title = "Pagination cursor is not valid"


def encode_cursor(key: int) -> str:
    return base64.urlsafe_b64encode(f"k:{key}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, value = text.split(":", 1)
        key = int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCursor(f"cursor {cursor[:40]!r} was not issued by this API") from exc
    if prefix != "k" or not 0 <= key < 2**63:
        raise InvalidCursor(f"cursor {cursor[:40]!r} was not issued by this API")
    return key

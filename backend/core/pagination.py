"""Opaque cursors for keyset pagination: the last key seen (an integer or a UUID),
base64url-encoded."""

from __future__ import annotations

import base64
import binascii
import uuid

from backend.core.errors import InvalidInput


class InvalidCursor(InvalidInput):
    code = "invalid-cursor"
    title = "Pagination cursor is not valid"


def encode_cursor(key: int | uuid.UUID) -> str:
    text = f"u:{key}" if isinstance(key, uuid.UUID) else f"k:{key}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, key_type: type = int) -> int | uuid.UUID | None:
    """The key in `cursor`, which must be of `key_type` (int or uuid.UUID)."""
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, value = text.split(":", 1)
        key = uuid.UUID(value) if key_type is uuid.UUID else int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCursor(f"cursor {cursor[:40]!r} was not issued by this API") from exc
    valid = (prefix == "u") if key_type is uuid.UUID else (prefix == "k" and 0 <= key < 2**63)
    if not valid:
        raise InvalidCursor(f"cursor {cursor[:40]!r} was not issued by this API")
    return key


def keyset_page(
    session,
    query,
    key_column,
    cursor: str | None,
    limit: int,
    *,
    ascending: bool = False,
    key_of=None,
    key_type: type = int,
) -> tuple[list, str | None]:
    """One page of `query` ordered by `key_column` (newest first unless `ascending`), after
    `cursor`; returns (rows, next cursor or None). `key_of(row)` reads the key of a row that
    is not a single model instance (e.g. a joined tuple)."""
    after = decode_cursor(cursor, key_type)
    if after is not None:
        query = query.where(key_column > after if ascending else key_column < after)
    order = key_column.asc() if ascending else key_column.desc()
    rows = list(session.exec(query.order_by(order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    key_of = key_of or (lambda row: getattr(row, key_column.key))
    return rows, encode_cursor(key_of(rows[-1])) if more and rows else None

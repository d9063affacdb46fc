"""Opaque cursors for keyset pagination: the last key seen (an integer or a UUID),
base64url-encoded."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy.orm import InstrumentedAttribute
from sqlmodel import Session
from sqlmodel.sql.expression import Select, SelectOfScalar

from backend.core.errors import InvalidInput

PageKey = int | uuid.UUID


class InvalidCursor(InvalidInput):
    code = "invalid-cursor"
    title = "Pagination cursor is not valid"


def encode_cursor(key: PageKey) -> str:
    text = f"u:{key}" if isinstance(key, uuid.UUID) else f"k:{key}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, key_type: type[PageKey] = int) -> PageKey | None:
    """The key in `cursor`, which must be of `key_type` (int or uuid.UUID)."""
    if not cursor:
        return None
    key: PageKey
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, value = text.split(":", 1)
        if key_type is uuid.UUID:
            key = uuid.UUID(value)
            valid = prefix == "u"
        else:
            key = int(value)
            valid = prefix == "k" and 0 <= key < 2**63
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCursor(f"cursor {cursor[:40]!r} was not issued by this API") from exc
    if not valid:
        raise InvalidCursor(f"cursor {cursor[:40]!r} was not issued by this API")
    return key


def keyset_page(
    session: Session,
    query: SelectOfScalar[Any] | Select[*tuple[Any, ...]],
    key_column: PageKey | None,
    cursor: str | None,
    limit: int,
    *,
    ascending: bool = False,
    key_of: Callable[[Any], PageKey] | None = None,
    key_type: type[PageKey] = int,
) -> tuple[list[Any], str | None]:
    """One page of `query` ordered by `key_column` (newest first unless `ascending`), after
    `cursor`; returns (rows, next cursor or None). `key_column` is a model attribute such as
    `Trade.trade_id` (SQLModel types it as its values, hence `PageKey | None`). `key_of(row)` reads
    the key of a row that is not a single model instance (e.g. a joined tuple)."""
    # At run time a model's class attribute is the mapped column (SQLModel types it as values).
    column = cast(InstrumentedAttribute[PageKey], key_column)
    after = decode_cursor(cursor, key_type)
    if after is not None:
        query = query.where(column > after if ascending else column < after)
    order = column.asc() if ascending else column.desc()
    rows = list(session.exec(query.order_by(order).limit(limit + 1)))
    return keyset_cut(rows, limit, key_of or (lambda row: getattr(row, column.key)))


def keyset_cut(
    rows: list[Any], limit: int, key_of: Callable[[Any], PageKey]
) -> tuple[list[Any], str | None]:
    """The first `limit` of `rows` (a query's `limit + 1` rows in key order) and the next
    page's cursor (None on the last page)."""
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(key_of(rows[-1])) if more and rows else None

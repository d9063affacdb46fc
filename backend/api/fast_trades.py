"""`GET /v1/trading/trades` without FastAPI: the uncached public trade list's request path.

The route in backend/api/routes/trading.py stays what the OpenAPI document describes and what
answers every request this path declines. Like the order book's path (fast_book.py), this
pure-ASGI middleware answers the well-formed requests (`market_id` matching the route's pattern,
`cursor` of at most 64 characters that this API issued, `limit` 1-500, nothing else) with the
same bytes: one statement (`trades.trades_query`) on the async pool, JSON written straight
from the rows (`trades.trades_json`). The route ran on a worker thread with a sync session,
built a pydantic model per trade and validated the page again against `response_model`.

Identical requests in flight share one statement that began after each of them arrived
(`SharedReads`, the same switch as the order book's: `orderbook_share_reads`), so a client
that saw a trade in the WebSocket feed finds it here. Anything unusual — another parameter,
a repeated one, a bad market id or cursor, SQLite, an error on the way — goes to the route.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Receive, Scope, Send

from backend.api.asgi import send_body
from backend.api.fast_book import SharedReads
from backend.api.middleware import app_settings
from backend.core.async_db import AsyncPool, Query, async_pool
from backend.market import trades

PATH = "/v1/trading/trades"
_MARKET_ID = re.compile(r"(energy|rec)-[0-9]{1,18}")
_LIMIT = re.compile(r"[0-9]{1,3}")
_HEADERS = [(b"content-type", b"application/json")]
TradesQuery = tuple[str | None, str | None, int]


def trades_query_of(query_string: bytes) -> TradesQuery | None:
    """(market_id, cursor, limit) when the query string is one the route would accept as is."""
    found: dict[bytes, str] = {}
    for pair in query_string.split(b"&") if query_string else ():
        name, _, raw = pair.partition(b"=")
        if name not in (b"market_id", b"cursor", b"limit") or name in found:
            return None
        found[name] = unquote_plus(raw.decode("latin-1"))
    market_id, cursor, limit = found.get(b"market_id"), found.get(b"cursor"), 100
    if market_id is not None and not _MARKET_ID.fullmatch(market_id):
        return None
    if cursor is not None and len(cursor) > 64:
        return None
    if b"limit" in found:
        if not _LIMIT.fullmatch(found[b"limit"]):
            return None
        limit = int(found[b"limit"])
        if not 1 <= limit <= 500:
            return None
    return market_id, cursor, limit


class TradesPath:
    """Pure ASGI, innermost: answers `GET /v1/trading/trades` or passes the request on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.shared = SharedReads()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "GET":
            return await self.app(scope, receive, send)
        asked = trades_query_of(scope["query_string"])
        settings = app_settings(scope)
        pool = async_pool(settings) if asked is not None else None
        if asked is None or pool is None:
            return await self.app(scope, receive, send)
        market_id, cursor, limit = asked
        try:
            # NotFound (a market id that cannot exist), InvalidCursor: the route's problems
            query, params = trades.trades_params(market_id=market_id, cursor=cursor, limit=limit)
            if settings.orderbook_share_reads:
                body = await self.shared.run(asked, lambda: _read(pool, query, params, limit))
            else:
                body = await _read(pool, query, params, limit)
        except Exception:  # the route answers it (its 404, 422 and 503 problems)
            return await self.app(scope, receive, send)
        scope["gridledger.route"] = PATH
        await send_body(send, 200, _HEADERS, body)


async def _read(pool: AsyncPool, query: Query, params: dict[str, object], limit: int) -> bytes:
    sql, literals = query.postgres()
    rows = await pool.fetch(sql, {**literals, **params})
    return trades.trades_json(rows, limit)

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

from starlette.types import ASGIApp, Scope

from backend.api.pre_routing import PreRoutingRead, cursor_limit, query_pairs
from backend.api.shared_reads import SharedReads
from backend.core.async_db import AsyncPool, Query
from backend.core.config import Settings
from backend.market import trades

PATH = "/v1/trading/trades"
_MARKET_ID = re.compile(r"(energy|rec)-[0-9]{1,18}")
_PARAMETERS = frozenset((b"market_id", b"cursor", b"limit"))
TradesQuery = tuple[str | None, str | None, int]


def trades_query_of(query_string: bytes) -> TradesQuery | None:
    """(market_id, cursor, limit) when the query string is one the route would accept as is."""
    found = query_pairs(query_string, _PARAMETERS)
    page = cursor_limit(found) if found is not None else None
    if found is None or page is None:
        return None
    market_id = found.get(b"market_id")
    if market_id is not None and not _MARKET_ID.fullmatch(market_id):
        return None
    return market_id, *page


class TradesPath(PreRoutingRead[TradesQuery]):
    """Pure ASGI, innermost: answers `GET /v1/trading/trades` or passes the request on."""

    paths = (PATH,)

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)
        self.shared = SharedReads()

    def parse(self, scope: Scope) -> TradesQuery | None:
        return trades_query_of(scope["query_string"])

    async def answer(
        self, scope: Scope, asked: TradesQuery, pool: AsyncPool, settings: Settings
    ) -> bytes:
        # an exception: the route answers it (NotFound for a market id that cannot exist,
        # InvalidCursor: its 404 and 422 problems; 503)
        market_id, cursor, limit = asked
        query, params = trades.trades_params(market_id=market_id, cursor=cursor, limit=limit)
        if not settings.orderbook_share_reads:
            return await _read(pool, query, params, limit)
        body: bytes = await self.shared.run(asked, lambda: _read(pool, query, params, limit))
        return body


async def _read(pool: AsyncPool, query: Query, params: dict[str, object], limit: int) -> bytes:
    sql, literals = query.postgres()
    rows = await pool.fetch(sql, {**literals, **params})
    return trades.trades_json(rows, limit)

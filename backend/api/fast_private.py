""" "My orders" (`GET /v1/trading/orders`) and my balance (`GET /v1/energy/balance`) without
FastAPI: the per-caller reads' request path.

The routes in backend/api/routes/ stay what the OpenAPI document describes and answer every
request this path declines. This pure-ASGI middleware answers the well-formed ones (known
query parameters, each at most once, valid values; one credential header of each kind) with
the same bytes, skipping routing, dependency resolution and query validation:

- authentication is the routes' own (`deps.authenticate_async`, `deps.check_scope` with the
  `read` scope): the API key and its account (or the token's account) are read from the
  database on every request, and the rate-limit counter is taken in the same store. Nothing is
  cached, so a revoked key, an expired key, a disabled account or a removed scope takes effect
  on the very next request, as before;
- a domain error on the way (401, 403, 429, an invalid cursor, no chain time) is answered with
  the problem the route's exception handler would send (`problem_of`), so no request is
  counted twice (only one that meets an unexpected error after authentication, e.g. the
  database going away, is handed to the route and counted again);
- the data are read with the routes' statements and written from the rows
  (`account_orders.my_orders_json`, the balance's model: it is small).

Anything else — another parameter, a repeated one or a repeated credential header, SQLite (no
async pool), an unexpected error before authentication — is handed to the route.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Receive, Scope, Send

from backend.accounts.models import Account
from backend.accounts.models import Scope as KeyScope
from backend.api.asgi import send_body
from backend.api.deps import authenticate_async, check_scope, read_chain_time
from backend.api.middleware import app_settings
from backend.api.problems import problem_of
from backend.core.async_db import AsyncReads, async_pool
from backend.core.config import Settings
from backend.core.errors import GridLedgerError
from backend.energy import services
from backend.market import account_orders
from backend.market.schemas import OrderPublicStatus

ORDERS, BALANCE = "/v1/trading/orders", "/v1/energy/balance"
_LIMIT = re.compile(r"[0-9]{1,3}")
_STATUSES = {status.value: status for status in OrderPublicStatus}
_HEADERS = [(b"content-type", b"application/json")]
Read = Callable[[AsyncReads, Settings, Account], Awaitable[bytes]]


def orders_query(query_string: bytes) -> tuple[str | None, int, OrderPublicStatus | None] | None:
    """(cursor, limit, status) when the query string is one `my_orders` would accept as is."""
    found: dict[bytes, str] = {}
    for pair in query_string.split(b"&") if query_string else ():
        name, _, raw = pair.partition(b"=")
        if name not in (b"cursor", b"limit", b"status") or name in found:
            return None
        found[name] = unquote_plus(raw.decode("latin-1"))
    cursor, limit, status = found.get(b"cursor"), 100, None
    if cursor is not None and len(cursor) > 64:
        return None
    if b"limit" in found:
        if not _LIMIT.fullmatch(found[b"limit"]):
            return None
        limit = int(found[b"limit"])
        if not 1 <= limit <= 500:
            return None
    if b"status" in found:
        status = _STATUSES.get(found[b"status"])
        if status is None:
            return None
    return cursor, limit, status


def credentials(scope: Scope) -> tuple[str | None, str | None] | None:
    """(Authorization, X-API-Key), each None when absent; None when either is repeated."""
    authorization = x_api_key = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            if authorization is not None:
                return None
            authorization = value.decode("latin-1")
        elif name == b"x-api-key":
            if x_api_key is not None:
                return None
            x_api_key = value.decode("latin-1")
    return authorization, x_api_key


def my_orders(cursor: str | None, limit: int, status: OrderPublicStatus | None) -> Read:
    async def read(reads: AsyncReads, settings: Settings, account: Account) -> bytes:
        now = await read_chain_time(settings)
        query, params = account_orders.my_orders_params(
            account.id, now=now, cursor=cursor, limit=limit, status=status
        )
        return account_orders.my_orders_json(await reads.all(query, params), limit)

    return read


async def my_balance(reads: AsyncReads, settings: Settings, account: Account) -> bytes:
    me = account.address.lower()
    params = {"address": me}
    balances, trades = services.balance_rows(await reads.all(services.BALANCE, params))
    model = services.balance_of(me, balances, trades)
    return model.__pydantic_serializer__.to_json(model)


def read_of(scope: Scope) -> Read | None:
    """What this path answers for the request, or None (the route's)."""
    if scope["path"] == BALANCE:
        return my_balance if not scope["query_string"] else None
    asked = orders_query(scope["query_string"])
    return my_orders(*asked) if asked is not None else None


class PrivateReadsPath:
    """Pure ASGI, innermost: answers my orders and my balance or passes the request on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] not in (ORDERS, BALANCE)
            or scope["method"] != "GET"
        ):
            return await self.app(scope, receive, send)
        read, sent = read_of(scope), credentials(scope)
        settings = app_settings(scope)
        pool = async_pool(settings) if read is not None and sent is not None else None
        if read is None or sent is None or pool is None:
            return await self.app(scope, receive, send)
        reads = AsyncReads(pool)
        try:
            account, key = await authenticate_async(reads, settings, *sent)
        except GridLedgerError as error:  # 401, 429: what the route's handler answers
            return await self._problem(error, scope, receive, send)
        except Exception:  # e.g. the database: the route answers it (503)
            return await self.app(scope, receive, send)
        try:
            check_scope(KeyScope.READ, account, key)
            body = await read(reads, settings, account)
        except GridLedgerError as error:  # 403 insufficient-scope, 422 invalid-cursor
            return await self._problem(error, scope, receive, send)
        except Exception:  # the route answers it (this request is counted once more)
            return await self.app(scope, receive, send)
        scope["gridledger.route"] = scope["path"]
        await send_body(send, 200, _HEADERS, body)

    @staticmethod
    async def _problem(error: GridLedgerError, scope: Scope, receive: Receive, send: Send) -> None:
        scope["gridledger.route"] = scope["path"]
        await problem_of(error, scope["path"])(scope, receive, send)

""" "My orders" (`GET /v1/trading/orders`) and my balance (`GET /v1/energy/balance`) without
FastAPI: the per-caller reads' request path (a `PreRoutingRead`, backend/api/pre_routing.py).

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

from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Scope

from backend.accounts.models import Account
from backend.accounts.models import Scope as KeyScope
from backend.api.deps import authenticate_async, check_scope, read_chain_time
from backend.api.pre_routing import PreRoutingRead, cursor_limit, query_pairs
from backend.api.problems import problem_of
from backend.core.async_db import AsyncPool, AsyncReads
from backend.core.config import Settings
from backend.core.errors import GridLedgerError
from backend.energy import services
from backend.market import account_orders
from backend.market.schemas import OrderPublicStatus

ORDERS, BALANCE = "/v1/trading/orders", "/v1/energy/balance"
_PARAMETERS = frozenset((b"cursor", b"limit", b"status"))
_STATUSES = {status.value: status for status in OrderPublicStatus}
Read = Callable[[AsyncReads, Settings, Account], Awaitable[bytes]]


def orders_query(query_string: bytes) -> tuple[str | None, int, OrderPublicStatus | None] | None:
    """(cursor, limit, status) when the query string is one `my_orders` would accept as is."""
    found = query_pairs(query_string, _PARAMETERS)
    page = cursor_limit(found) if found is not None else None
    if found is None or page is None:
        return None
    status = None
    if b"status" in found:
        status = _STATUSES.get(found[b"status"])
        if status is None:
            return None
    return *page, status


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


Asked = tuple[Read, tuple[str | None, str | None]]  # the read, the credentials sent


class PrivateReadsPath(PreRoutingRead[Asked]):
    """Pure ASGI, innermost: answers my orders and my balance or passes the request on."""

    paths = (ORDERS, BALANCE)

    def parse(self, scope: Scope) -> Asked | None:
        read, sent = read_of(scope), credentials(scope)
        return (read, sent) if read is not None and sent is not None else None

    async def answer(
        self, scope: Scope, asked: Asked, pool: AsyncPool, settings: Settings
    ) -> bytes | ASGIApp:
        # another exception (e.g. the database): the route answers it (503; a request that got
        # past authentication is then counted once more)
        read, sent = asked
        reads = AsyncReads(pool)
        try:
            account, key = await authenticate_async(reads, settings, *sent)
            check_scope(KeyScope.READ, account, key)
            return await read(reads, settings, account)
        except GridLedgerError as error:  # 401, 403, 422 invalid-cursor, 429: the route's
            return problem_of(error, scope["path"])

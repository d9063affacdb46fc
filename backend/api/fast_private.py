""" "My orders" (`GET /v1/trading/orders`) and my balance (`GET /v1/energy/balance`) without
FastAPI: the per-caller reads' request path (a `PreRoutingRead`, backend/api/pre_routing.py).

The routes in backend/api/routes/ stay what the OpenAPI document describes and answer every
request this path declines. This pure-ASGI middleware answers the well-formed ones (known
query parameters, each at most once, valid values; one credential header of each kind) with
the same bytes, skipping routing, dependency resolution and query validation:

- authentication is the routes' own checks (`deps.authenticate_reading`, `deps.check_scope`
  with the `read` scope): the API key and its account (or the token's account) are read from
  the database on every request, and the rate-limit counter is taken in the same store.
  Nothing is cached, so a revoked key, an expired key, a disabled account or a removed scope
  takes effect on the very next request, as before;
- the data are read in the same database round trip as the credential's rows: the data
  statement names its caller by the token's account id, or by the API key's hash (its
  unrevoked key's account, `deps.caller_query`), and both statements go out together. The
  rows are answered only once the checks passed. A request whose statement cannot be built
  (an invalid cursor, no chain time) is authenticated first and then refused, as the route
  does;
- a domain error on the way (401, 403, 429, an invalid cursor, no chain time) is answered with
  the problem the route's exception handler would send (`problem_of`), so no request is
  counted twice (only one that meets an unexpected error after authentication, e.g. the
  database going away, is handed to the route and counted again);
- the data are written from the rows (`account_orders.my_orders_json`, the balance's model:
  it is small).

Anything else — another parameter, a repeated one or a repeated credential header, SQLite (no
async pool), an unexpected error before authentication — is handed to the route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Scope

from backend.accounts.models import Account
from backend.accounts.models import Scope as KeyScope
from backend.api.deps import (
    authenticate_async,
    authenticate_reading,
    check_scope,
    read_chain_time,
)
from backend.api.pre_routing import PreRoutingRead, cursor_limit, query_pairs
from backend.api.problems import problem_of
from backend.core.async_db import AsyncPool, AsyncReads, Query
from backend.core.config import Settings
from backend.core.errors import GridLedgerError
from backend.energy import services
from backend.market import account_orders
from backend.market.schemas import OrderPublicStatus

ORDERS, BALANCE = "/v1/trading/orders", "/v1/energy/balance"
_PARAMETERS = frozenset((b"cursor", b"limit", b"status"))
_STATUSES = {status.value: status for status in OrderPublicStatus}


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


@dataclass(frozen=True)
class Read:
    """What a request reads: its data statement (`statement(settings)`: the query and its
    parameters but the caller's, which `deps.caller_query` or `caller_params` give), and how
    its rows are written for the caller (`write(rows, account)`)."""

    statement: Callable[[Settings], Awaitable[tuple[Query, dict[str, Any]]]]
    write: Callable[[Sequence[Any], Account], bytes]


def my_orders(cursor: str | None, limit: int, status: OrderPublicStatus | None) -> Read:
    async def statement(settings: Settings) -> tuple[Query, dict[str, Any]]:
        now = await read_chain_time(settings)
        return account_orders.my_orders_params(
            None, now=now, cursor=cursor, limit=limit, status=status
        )

    return Read(statement, lambda rows, _: account_orders.my_orders_json(rows, limit))


async def _balance_statement(settings: Settings) -> tuple[Query, dict[str, Any]]:
    return services.BALANCE, {}


def _balance_json(rows: Sequence[Any], account: Account) -> bytes:
    balances, trades = services.balance_rows(rows)
    model = services.balance_of(account.address.lower(), balances, trades)
    return model.__pydantic_serializer__.to_json(model)


MY_BALANCE = Read(_balance_statement, _balance_json)


def caller_params(account: Account) -> dict[str, Any]:
    """The caller's parameters of a `Read`'s statement, once the caller is known."""
    return {"account_id": account.id, "address": account.address.lower()}


def read_of(scope: Scope) -> Read | None:
    """What this path answers for the request, or None (the route's)."""
    if scope["path"] == BALANCE:
        return MY_BALANCE if not scope["query_string"] else None
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
            try:
                query, params = await read.statement(settings)
            except Exception:  # an invalid cursor, no chain time: refused after authentication
                account, key = await authenticate_async(reads, settings, *sent)
                check_scope(KeyScope.READ, account, key)
                query, params = await read.statement(settings)
                rows = await reads.all(query, {**params, **caller_params(account)})
            else:  # the usual request: its credential and data in one round trip
                account, key, rows = await authenticate_reading(
                    reads, settings, *sent, query, params
                )
                check_scope(KeyScope.READ, account, key)
            return read.write(rows, account)
        except GridLedgerError as error:  # 401, 403, 422 invalid-cursor, 429: the route's
            return problem_of(error, scope["path"])

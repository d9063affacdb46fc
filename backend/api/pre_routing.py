"""What the pre-routing paths share: reads answered before FastAPI routes the request.

A pre-routing path is a pure-ASGI middleware, innermost, that answers the well-formed requests
of one or two hot routes itself and hands everything else to the app, whose route stays what
the OpenAPI document describes and answers what the path declines. `PreRoutingRead` is the
flow of the read paths (order book, public trades, my orders and balance), written once:

1. `handles`: the method and path are the route's, else the app's;
2. `parse(scope)`: what the request asks for, when it is one the route would accept as is
   (query strings through `query_pairs`, pages through `cursor_limit`); None: the route's;
3. the running loop's async pool for the app's database (`async_pool`); None (SQLite): the
   route's;
4. `answer(...)`: the JSON body of a 200 answer, or an ASGI app that sends another answer (a
   problem, `problems.problem_of`); any exception hands the request to the route, which
   answers it (its 404, 422, 503 problems).
"""

from __future__ import annotations

import re
from typing import Generic, TypeVar
from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Receive, Scope, Send

from backend.api.asgi import send_body
from backend.api.middleware import app_settings
from backend.core.async_db import AsyncPool, async_pool
from backend.core.config import Settings

Asked = TypeVar("Asked")
JSON_HEADERS = [(b"content-type", b"application/json")]
DEFAULT_LIMIT, MAX_LIMIT, MAX_CURSOR = 100, 500, 64  # the paged routes' Query() bounds
_LIMIT = re.compile(r"[0-9]{1,3}")


def handles(scope: Scope, method: str, *paths: str) -> bool:
    """An HTTP request for one of `paths` with `method`."""
    return scope["type"] == "http" and scope["path"] in paths and scope["method"] == method


def query_pairs(query_string: bytes, names: frozenset[bytes]) -> dict[bytes, str] | None:
    """The parameters of a query string that has only `names`, each at most once, with their
    values decoded as the route decodes them; None for any other (a repeated parameter, an
    unknown one, an empty pair): the route decides."""
    found: dict[bytes, str] = {}
    for pair in query_string.split(b"&") if query_string else ():
        name, _, raw = pair.partition(b"=")
        if name not in names or name in found:
            return None
        found[name] = unquote_plus(raw.decode("latin-1"))
    return found


def cursor_limit(found: dict[bytes, str]) -> tuple[str | None, int] | None:
    """(cursor, limit) of a paged route's parameters in `found` (`query_pairs`): a cursor of at
    most 64 characters, a limit of 1-500 digits-only (default 100); None when the route would
    refuse them."""
    cursor = found.get(b"cursor")
    if cursor is not None and len(cursor) > MAX_CURSOR:
        return None
    raw = found.get(b"limit")
    if raw is None:
        return cursor, DEFAULT_LIMIT
    if not _LIMIT.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        return None
    return cursor, int(raw)


class PreRoutingRead(Generic[Asked]):
    """Pure ASGI, innermost: answers `GET` on `paths` (see the module's flow) or passes the
    request on to the app."""

    paths: tuple[str, ...]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def parse(self, scope: Scope) -> Asked | None:
        """What the request asks for; None: the route's."""
        raise NotImplementedError

    async def answer(
        self, scope: Scope, asked: Asked, pool: AsyncPool, settings: Settings
    ) -> bytes | ASGIApp:
        """The body of a 200 JSON answer, or the ASGI app that sends the answer; raise to hand
        the request to the route."""
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not handles(scope, "GET", *self.paths):
            return await self.app(scope, receive, send)
        asked = self.parse(scope)
        settings = app_settings(scope)
        pool = async_pool(settings) if asked is not None else None
        if asked is None or pool is None:
            return await self.app(scope, receive, send)
        try:
            answer = await self.answer(scope, asked, pool, settings)
        except Exception:  # the route answers it
            return await self.app(scope, receive, send)
        scope["gridledger.route"] = scope["path"]
        if isinstance(answer, bytes):
            await send_body(send, 200, JSON_HEADERS, answer)
        else:
            await answer(scope, receive, send)

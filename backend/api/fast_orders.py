"""`POST /v1/trading/orders` without FastAPI, for a session's wallet-signed order (energy offer,
bid or REC offer).

The route in backend/api/routes/trading.py stays what the OpenAPI document describes and what
answers every request this path declines. This pure-ASGI middleware (innermost: idempotency,
the read cache's invalidation and the metrics still wrap it) takes the common case — a JSON
body `OrderCreate` accepts, a Bearer session token, a wallet account, an order the group commit
can take (backend/market/async_intake.py `writer_pending`) — and skips routing, the dependency
tree and the per-request account read, which together cost most of the API's CPU per order.

What it trusts between requests, and why that is safe:
- a token's subject and expiry, once its signature checked (`Sessions`): the same bytes always
  decode to the same claims, and the expiry is compared on every request;
- an account's kind and address (never changed after sign-up). Whether it is still *active*
  is not cached: the group commit refuses a disabled account's order in the transaction that
  would store it (order_writer `_ACTIVE`), and an order handed back to the sync intake reads
  the account row first.

Everything else — another credential, an API key, a body the route would refuse, a custodial
account, a contract wallet's signature — goes to the route before anything is counted, so
those answers are the route's own. Once this path has counted the request against the rate
limit it answers itself; its refusals come from the app's own exception handlers
(`problems.problem_of`), so their bytes are the route's.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.accounts.models import Account, AccountKind
from backend.accounts.security import decode_access_token
from backend.api import deps
from backend.api.middleware import app_settings
from backend.api.pre_routing import handles
from backend.api.rate_counts import SharedCounts
from backend.core.async_db import AsyncReads, async_pool
from backend.core.config import Settings
from backend.core.errors import GridLedgerError
from backend.market import async_intake
from backend.market.models import OrderStatus
from backend.market.schemas import OrderCreate

PATH = "/v1/trading/orders"
MAX_BODY_BYTES = 64 * 1024  # an order is < 1 kB; a bigger body is the route's to judge
MAX_CACHED = 10_000  # tokens and accounts kept per process (cleared when full)
EXPIRY_MARGIN_S = 2  # a token this close to its expiry goes to the route


class Sessions:
    """Session tokens already checked, and the immutable part of their accounts."""

    def __init__(self) -> None:
        self.tokens: dict[tuple[str, str], tuple[uuid.UUID, float]] = {}
        self.accounts: dict[uuid.UUID, Account] = {}

    def subject(self, token: str, settings: Settings) -> uuid.UUID | None:
        """The account id of a valid, unexpired access token; None: let the route judge it."""
        secret = settings.secret_key.get_secret_value()
        known = self.tokens.get((secret, token))
        if known is None:
            try:
                claims = decode_access_token(token, settings)
                known = (uuid.UUID(str(claims["sub"])), float(claims["exp"]))
            except (GridLedgerError, KeyError, TypeError, ValueError):
                return None
            if len(self.tokens) >= MAX_CACHED:
                self.tokens.clear()
            self.tokens[(secret, token)] = known
        account_id, expires = known
        return account_id if time.time() < expires - EXPIRY_MARGIN_S else None

    async def account(self, settings: Settings, account_id: uuid.UUID) -> Account | None:
        """The account as last read (its id, kind and address never change); read and kept when
        new to this process and active, else None."""
        account = self.accounts.get(account_id)
        if account is None:
            account = await read_account(settings, account_id)
            if account is None or not account.active:
                return None
            if len(self.accounts) >= MAX_CACHED:
                self.accounts.clear()
            self.accounts[account_id] = account
        return account


async def read_account(settings: Settings, account_id: uuid.UUID) -> Account | None:
    """The account row now (detached), through this loop's async pool; None if there is none."""
    pool = async_pool(settings)
    if pool is None:
        return None
    rows = await AsyncReads(pool).all(deps._ACCOUNT_BY_ID, {"id": account_id})
    return Account(**rows[0]._asdict()) if rows else None


class OrderIntakePath:
    """Pure ASGI: answers a session's wallet-signed order, or passes the request on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.sessions = Sessions()
        self.counts = SharedCounts()  # the rate limit's window counts (deps._count_request's)
        self.answered = 0  # requests this path answered itself (tests)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not handles(scope, "POST", PATH):
            return await self.app(scope, receive, send)
        token = bearer_token(scope["headers"])
        if token is None:
            return await self.app(scope, receive, send)
        messages, body = await read_body(receive)
        replay = replay_body(messages, receive)
        if body is None:
            return await self.app(scope, replay, send)
        settings = app_settings(scope)
        try:
            request = OrderCreate.model_validate(json.loads(body))
        except (ValueError, ValidationError, RecursionError):  # the route's to answer
            return await self.app(scope, replay, send)
        account_id = self.sessions.subject(token, settings)
        try:
            account = await self.sessions.account(settings, account_id) if account_id else None
            pending = (
                await async_intake.writer_pending(settings, account, request)
                if account is not None and account.kind == AccountKind.WALLET
                else None
            )
        except Exception:  # e.g. no signature fields (422), the database or node away: the route
            pending = None
        if pending is None:
            return await self.app(scope, replay, send)
        scope["gridledger.route"] = PATH
        self.answered += 1
        try:
            count = await self.counts.count(settings, deps._rate_limit_key(pending.account_id), 61)
            deps._check_rate(count, settings.rate_limit_per_minute)
            order_id = await async_intake.submit(settings, pending)
            if order_id is None:  # ASK_CHAIN: the sync intake, for an account still active
                order_id = await self._sync_intake(scope, settings, pending.account_id, request)
        except Exception as error:  # answered by the app's own handler, as the route's
            return await answer_error(scope, replay, send, error)
        await answer_accepted(send, order_id)

    async def _sync_intake(
        self, scope: Scope, settings: Settings, account_id: uuid.UUID, request: OrderCreate
    ) -> str:
        account = deps._check_active(await read_account(settings, account_id))
        return await deps.SyncSessions(Request(scope)).run(
            async_intake.sync_intake(settings, account, request)
        )


def accepted_body(order_id: str) -> bytes:
    """The route's 202 body (`ModelJSON(Accepted(...))`) for an order id (0x-hex: nothing to
    escape), written directly: a model and its serialiser per order cost more than the bytes."""
    return b'{"id":"%s","status":"%s","poll":"%s/%s","tx_hash":null}' % (
        order_id.encode(),
        _OPEN,
        _PATH,
        order_id.encode(),
    )


_OPEN, _PATH = OrderStatus.OPEN.value.encode(), PATH.encode()


async def answer_accepted(send: Send, order_id: str) -> None:
    """202 with `accepted_body`, and the headers Starlette's Response gives it (content-length,
    then content-type)."""
    body = accepted_body(order_id)
    headers = [(b"content-length", b"%d" % len(body)), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 202, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The Bearer token of a request whose only credential it is (the first Authorization
    header, as the route reads it); None otherwise."""
    token = None
    for name, value in headers:
        if name == b"x-api-key":
            return None
        if name == b"authorization" and token is None:
            text = value.decode("latin-1")
            if not text.lower().startswith("bearer "):
                return None
            token = text[7:].strip()
        elif name == b"content-type" and value != b"application/json":
            return None  # another media type: the route decides how to read the body
    return token or None


async def read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The request's messages read (up to MAX_BODY_BYTES of body), and the whole body; None
    when it is bigger or the client went away."""
    messages: list[Message] = []
    size = 0
    while size <= MAX_BODY_BYTES:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            if size > MAX_BODY_BYTES:
                return messages, None
            return messages, b"".join(m.get("body", b"") for m in messages)
    return messages, None


def replay_body(messages: list[Message], receive: Receive) -> Receive:
    """A `receive` that hands the app the messages already read, then the connection's own."""
    queue = list(messages)

    async def replay() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay


async def answer_error(scope: Scope, receive: Receive, send: Send, error: Exception) -> None:
    """The response the app's exception handlers give `error` (the route's problem); an error
    no handler but the catch-all takes is raised, for the server's error middleware."""
    handlers: dict[Any, Any] = getattr(scope.get("app"), "exception_handlers", {})
    for kind in type(error).__mro__:
        if kind is Exception:
            break
        handler = handlers.get(kind)
        if handler is not None:
            response = await handler(Request(scope, receive), error)
            return await response(scope, receive, send)
    raise error

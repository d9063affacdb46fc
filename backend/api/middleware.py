"""HTTP middleware (pure ASGI, no per-request task or stream): request metrics (Prometheus)
and `Idempotency-Key` on POST.

Idempotency: the first POST with a key stores `pending` in Redis (SET NX, for
`idempotency_pending_ttl_s`, so a request that dies or is cancelled frees its key soon); when it
completes (status < 500) its status and body are stored for `idempotency_ttl_s` and every retry
with the same key gets that response replayed (`Idempotent-Replayed: true`) without running the
handler again. Keys are scoped by caller (JWT subject or API-key hash) and bound to the path,
query string and body: the same key with another request is a 422; a retry while the first is
running a 409. Bodies above `idempotency_max_body_bytes` are refused (413) before they are held.

A stored response can carry secrets (tokens from a login, a new API key), so it is encrypted
with AES-256-GCM under a key derived from the caller and the Idempotency-Key, which only the
client knows: the store holds a hash of them as the slot name, never the key itself. A replay
is only handed to a caller that is still allowed in (`replay_guard`: a revoked API key or a
disabled account gets 401, not the stored answer).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import NotRequired, TypedDict

import jwt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from prometheus_client import Counter, Histogram
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.accounts.security import hash_api_key
from backend.api.asgi import ResponseCapture, StatusWatch, send_body
from backend.api.problems import problem
from backend.core.config import Settings, get_settings
from backend.core.errors import ServiceUnavailable
from backend.core.kv import store_for

REQUESTS = Counter("gridledger_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "gridledger_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def app_settings(scope: Scope) -> Settings:
    """The app's settings, honouring a test's `dependency_overrides[get_settings]`."""
    app = scope.get("app")
    settings: Settings = getattr(app, "dependency_overrides", {}).get(get_settings, get_settings)()
    return settings


class StoredResponse(TypedDict):
    """An idempotency slot in the store: `pending` while the first request runs, then `done`."""

    state: str  # pending | done
    fp: str  # SHA-256 of path and body
    status: NotRequired[int]
    sealed: NotRequired[str]  # base64(nonce ‖ AES-GCM(media type and body)), see `_seal`


class MetricsMiddleware:
    """Counts and times every request by route template (cache hits by their path)."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.children: dict[tuple[str, str, int], tuple[Histogram, Counter]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        watch = StatusWatch(send)
        try:
            await self.app(scope, receive, watch)
        finally:
            name = route_template(scope)
            status = watch.status
            key = (scope["method"], name, status)
            children = self.children.get(key)
            if children is None:  # labels() takes a lock and builds a tuple: do it once per key
                children = self.children[key] = (
                    LATENCY.labels(scope["method"], name),
                    REQUESTS.labels(scope["method"], name, str(status)),
                )
            children[0].observe(time.perf_counter() - started)
            children[1].inc()


def route_template(scope: Scope) -> str:
    """The matched route's full path template (`/v1/trading/orders/{order_id}`): bounded label
    values. FastAPI keeps an included router's prefix in its route context, not on the route."""
    if "gridledger.route" in scope:  # answered before routing (backend/api/fast_book.py)
        return str(scope["gridledger.route"])
    context = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(context, "path", None) or getattr(scope.get("route"), "path", None)
    if template:
        return template
    return scope["path"] if "gridledger.cache" in scope else "unmatched"  # a hit: a fixed path


def _caller(headers: Headers, scope: Scope, secret: str) -> str:
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        try:
            return "acct:" + str(
                jwt.decode(authorization[7:].strip(), secret, algorithms=["HS256"])["sub"]
            )
        except (jwt.InvalidTokenError, KeyError):
            pass
    api_key = headers.get("x-api-key")
    if api_key:
        return "key:" + hash_api_key(api_key)
    client = scope.get("client")
    return "anon:" + (client[0] if client else "-")


# Called before a replay with the request's scope and headers: a problem response to send
# instead (the caller is no longer allowed in), or None.
ReplayGuard = Callable[[Scope, Headers], Awaitable[Response | None]]


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, replay_guard: ReplayGuard | None = None):
        self.app = app
        self.replay_guard = replay_guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        key = _first_header(scope, b"idempotency-key")
        if key is None:  # most POSTs: no Headers mapping built for them
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        path = scope["path"]
        if not 1 <= len(key) <= 255:
            reply = problem(
                422,
                code="invalid-idempotency-key",
                title="Idempotency-Key must be 1-255 characters",
                detail=None,
                instance=path,
            )
            return await reply(scope, receive, send)
        settings = app_settings(scope)
        store = store_for(settings)
        body = await _read_body(receive, settings.idempotency_max_body_bytes)
        if body is None:
            reply = problem(
                413,
                code="request-too-large",
                title="Request body too large for an idempotent request",
                detail=f"at most {settings.idempotency_max_body_bytes} bytes with Idempotency-Key",
                instance=path,
            )
            return await reply(scope, receive, send)
        fingerprint = hashlib.sha256(
            path.encode() + b"?" + scope.get("query_string", b"") + b"\0" + body
        ).hexdigest()
        caller = _caller(headers, scope, settings.secret_key.get_secret_value())
        slot = "gridledger:idem:" + hashlib.sha256(f"{caller}\0{key}".encode()).hexdigest()
        sealing_key = hashlib.sha256(f"seal\0{caller}\0{key}".encode()).digest()
        try:
            fresh = store.set_if_absent(
                slot,
                json.dumps({"state": "pending", "fp": fingerprint}),
                settings.idempotency_pending_ttl_s,
            )
            stored: StoredResponse | None = None if fresh else json.loads(store.get(slot) or "null")
        except ServiceUnavailable:
            reply = problem(
                503,
                code=ServiceUnavailable.code,
                title=ServiceUnavailable.title,
                detail="idempotency store (Redis) unavailable",
                instance=path,
            )
            return await reply(scope, receive, send)
        if stored is not None:
            if stored["fp"] != fingerprint:
                reply = problem(
                    422,
                    code="idempotency-key-reused",
                    title="Idempotency-Key reused with another request",
                    detail="send a new key for a different request",
                    instance=path,
                )
            elif stored["state"] == "pending":
                reply = problem(
                    409,
                    code="idempotency-in-progress",
                    title="A request with this key is still running",
                    detail="retry shortly",
                    instance=path,
                )
            else:
                refusal = await self.replay_guard(scope, headers) if self.replay_guard else None
                if refusal is None:
                    return await _replay(stored, sealing_key, send)
                return await refusal(scope, receive, send)
            return await reply(scope, receive, send)
        if not fresh and stored is None:  # key vanished between SET NX and GET: run once more
            store.put(
                slot,
                json.dumps({"state": "pending", "fp": fingerprint}),
                settings.idempotency_pending_ttl_s,
            )

        response = ResponseCapture()
        try:
            await self.app(scope, _replay_body(body, receive), response)
        except BaseException:  # a crash, or a cancelled request (client gone): free the key
            store.delete(slot)
            raise
        content, status, response_headers = response.body, response.status, response.headers()
        if status >= 500:
            store.delete(slot)
        else:
            media_type = next(
                (v.decode("latin-1") for k, v in response_headers if k.lower() == b"content-type"),
                None,
            )
            done: StoredResponse = {
                "state": "done",
                "fp": fingerprint,
                "status": status,
                "sealed": _seal(sealing_key, media_type, content),
            }
            store.put(slot, json.dumps(done), settings.idempotency_ttl_s)
        await send_body(send, status, response_headers, content)


def _first_header(scope: Scope, name: bytes) -> str | None:
    """`Headers(scope=scope).get(name)` for a lower-case name (ASGI servers send lower-case
    names), without building the mapping."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _seal(key: bytes, media_type: str | None, content: bytes) -> str:
    nonce = os.urandom(12)
    plain = json.dumps({"media_type": media_type, "body": content.decode("latin-1")}).encode()
    return base64.b64encode(nonce + AESGCM(key).encrypt(nonce, plain, None)).decode()


def _unseal(key: bytes, sealed: str) -> tuple[str | None, bytes] | None:
    raw = base64.b64decode(sealed)
    try:
        opened = json.loads(AESGCM(key).decrypt(raw[:12], raw[12:], None))
    except InvalidTag:
        return None
    return opened["media_type"], opened["body"].encode("latin-1")


def _replay_body(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the already-read body to the app, then the connection's own."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _replay(stored: StoredResponse, sealing_key: bytes, send: Send) -> None:
    opened = _unseal(sealing_key, stored.get("sealed", ""))
    if opened is None:  # cannot happen for a slot we wrote: the slot name binds the same inputs
        raise ValueError("stored idempotent response does not open with its key")
    media_type, content = opened
    headers = [(b"idempotent-replayed", b"true")]
    if media_type:
        headers.append((b"content-type", media_type.encode("latin-1")))
    await send_body(send, stored["status"], headers, content)

"""HTTP middleware: request metrics (Prometheus) and `Idempotency-Key` on POST.

Idempotency: the first POST with a key stores `pending` in Redis (SET NX); when it completes
(status < 500) its status and body are stored for `idempotency_ttl_s` and every retry with the
same key gets that response replayed (`Idempotent-Replayed: true`) without running the
handler again. Keys are scoped by caller (JWT subject or API-key hash) and bound to the
request body: the same key with another body is a 422; a retry while the first is running a 409.
"""
from __future__ import annotations

import hashlib
import json
import time

import jwt
from prometheus_client import Counter, Histogram
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response

from backend.api.problems import problem
from backend.core.config import get_settings
from backend.core.errors import ServiceUnavailable
from backend.core.kv import store_for

REQUESTS = Counter("gridledger_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("gridledger_http_request_seconds", "HTTP request latency", ["method", "route"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


def _settings(request: Request):
    return request.app.dependency_overrides.get(get_settings, get_settings)()


class MetricsMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        LATENCY.labels(request.method, name).observe(time.perf_counter() - started)
        REQUESTS.labels(request.method, name, str(response.status_code)).inc()
        return response


def _caller(request: Request, secret: str) -> str:
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        try:
            return "acct:" + str(jwt.decode(authorization[7:].strip(), secret, algorithms=["HS256"])["sub"])
        except (jwt.InvalidTokenError, KeyError):
            pass
    api_key = request.headers.get("x-api-key")
    if api_key:
        return "key:" + hashlib.sha256(api_key.encode()).hexdigest()
    return "anon:" + (request.client.host if request.client else "-")


class IdempotencyMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next):
        key = request.headers.get("idempotency-key")
        if request.method != "POST" or key is None:
            return await call_next(request)
        path = request.url.path
        if not 1 <= len(key) <= 255:
            return problem(422, "invalid-idempotency-key", "Idempotency-Key must be 1-255 characters",
                           None, path)
        settings = _settings(request)
        store = store_for(settings)
        body = await request.body()
        fingerprint = hashlib.sha256(path.encode() + b"\0" + body).hexdigest()
        caller = _caller(request, settings.secret_key.get_secret_value())
        slot = "gridledger:idem:" + hashlib.sha256(f"{caller}\0{key}".encode()).hexdigest()
        try:
            fresh = store.set_if_absent(slot, json.dumps({"state": "pending", "fp": fingerprint}),
                                        settings.idempotency_ttl_s)
            stored = None if fresh else json.loads(store.get(slot) or "null")
        except ServiceUnavailable:
            return problem(503, "service-unavailable", "A dependency is unavailable",
                           "idempotency store (Redis) unavailable", path)
        if stored is not None:
            if stored["fp"] != fingerprint:
                return problem(422, "idempotency-key-reused", "Idempotency-Key reused with another request",
                               "send a new key for a different request", path)
            if stored["state"] == "pending":
                return problem(409, "idempotency-in-progress", "A request with this key is still running",
                               "retry shortly", path)
            return Response(stored["body"].encode("latin-1"), status_code=stored["status"],
                            media_type=stored["media_type"], headers={"Idempotent-Replayed": "true"})
        if not fresh and stored is None:  # key vanished between SET NX and GET: run once more
            store.put(slot, json.dumps({"state": "pending", "fp": fingerprint}), settings.idempotency_ttl_s)
        try:
            response = await call_next(request)
        except Exception:
            store.delete(slot)
            raise
        chunks = [chunk async for chunk in response.body_iterator]
        content = b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks)
        if response.status_code >= 500:
            store.delete(slot)
        else:
            store.put(slot, json.dumps({
                "state": "done", "fp": fingerprint, "status": response.status_code,
                "media_type": response.media_type or response.headers.get("content-type"),
                "body": content.decode("latin-1"),
            }), settings.idempotency_ttl_s)
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return Response(content, status_code=response.status_code, headers=headers)

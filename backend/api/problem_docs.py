"""Error responses in the OpenAPI document, derived from each route's dependencies.

Every operation lists the problem responses it can really send, as `application/problem+json`
with the `Problem` schema: authenticated routes 401/429 (every 429 with its `Retry-After`
header), 403 behind `require_role`, routes with path ids 404, routes with parameters 422, JSON
bodies 400 (malformed JSON), POSTs 409 (an `Idempotency-Key` still running), routes on the
database, Redis or the chain 503. Errors a service raises beyond these are declared on the
route with `responses=raises(NotFound, ...)`.
A status a route already documents with its own content (e.g. `/health`'s 503) is left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from backend.api.deps import (
    chain_time,
    current_account,
    get_chain,
    get_db,
    get_reads,
    get_store,
    request_account,
    request_account_async,
)
from backend.api.problems import MEDIA_TYPE, STATUS_BY_ERROR, Problem
from backend.core.errors import GridLedgerError

PROBLEM_REF = "#/components/schemas/Problem"
BACKING_SERVICES: tuple[Callable[..., Any], ...] = (
    get_db,
    get_store,
    get_chain,
    get_reads,
    chain_time,
    request_account_async,  # counts the rate limit in Redis
)


def raises(*errors: type[GridLedgerError]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for domain errors the services raise beyond what the dependencies imply."""
    return {
        status: {"description": error.title}
        for error in errors
        for error_type, status in STATUS_BY_ERROR
        if issubclass(error, error_type)
    }


def _tree(dependant: Dependant) -> Iterator[Dependant]:
    """`dependant` and every dependency below it."""
    yield dependant
    for sub in dependant.dependencies:
        yield from _tree(sub)


def problem_statuses(route: Any) -> set[int]:
    """The problem statuses `route` (an `APIRoute` or its included context) can answer with,
    from its dependencies and parameters."""
    tree = list(_tree(route.dependant))
    calls = {d.call for d in tree[1:] if d.call is not None}
    statuses: set[int] = set()
    if calls & {current_account, request_account, request_account_async}:
        statuses |= {401, 429}
    # a missing role; an API key's missing scope
    checks = ("require_role.", "require_scope.", "require_scope_async.")
    if any(getattr(call, "__qualname__", "").startswith(checks) for call in calls):
        statuses.add(403)
    if route.dependant.path_params:
        statuses.add(404)
    if any(d.path_params or d.query_params or d.header_params or d.body_params for d in tree):
        statuses.add(422)
    if route.body_field is not None:
        statuses.add(400)
    if "POST" in route.methods:
        statuses |= {409, 422, 503}
    if calls & set(BACKING_SERVICES):
        statuses.add(503)
    return statuses


RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds until the rate-limit window resets (the body's `retry_after`)",
        "schema": {"type": "integer", "minimum": 0},
    }
}


def _problem_response(status: int, description: str | None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description or HTTPStatus(status).phrase,
        "content": {MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
    }
    if status == 429:  # every RateLimited carries retry_after, sent as Retry-After
        response["headers"] = RETRY_AFTER
    return response


def document_problems(app: FastAPI, openapi: dict[str, Any]) -> dict[str, Any]:
    """Adds the problem responses of every route to `openapi` (the generated document)."""
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        route: Any = context  # an included route with its router's prefix and dependencies
        if not route.include_in_schema:
            continue
        operations = openapi["paths"].get(route.path_format, {})
        for method in route.methods:
            operation = operations.get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            declared = {int(s) for s in responses if s.isdigit() and int(s) >= 400}
            for status in sorted(problem_statuses(route) | declared):
                existing = responses.get(str(status), {})
                if existing.get("content") and status != 422:
                    continue  # the route documents its own body (e.g. /health's 503)
                responses[str(status)] = _problem_response(
                    status, None if status == 422 else existing.get("description")
                )
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    return openapi


def install_problem_docs(app: FastAPI) -> None:
    """`app.openapi()` returns the generated document with every route's problem responses."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(
                app,
                get_openapi(
                    title=app.title,
                    version=app.version,
                    summary=app.summary,
                    description=app.description,
                    routes=app.routes,
                ),
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

"""RFC 9457 problem details: every error leaves the API as `application/problem+json`.

Domain errors map to HTTP status here and only here. `type` is a stable URI per error
code so clients can branch on it; extra fields of the error become extension members.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.core.errors import (
    Conflict,
    GridLedgerError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    Unauthenticated,
)

log = logging.getLogger("gridledger.api")
PROBLEM_BASE = "https://gridledger.dev/problems/"
MEDIA_TYPE = "application/problem+json"

STATUS_BY_ERROR: list[tuple[type[GridLedgerError], int]] = [
    (NotFound, 404),
    (Conflict, 409),
    (InvalidInput, 422),
    (Unauthenticated, 401),
    (PermissionDenied, 403),
    (RateLimited, 429),
    (ServiceUnavailable, 503),
]


class Problem(BaseModel):
    """The body of every error response (RFC 9457); extension members such as `errors`
    (validation), `retry_after` (429) or a domain error's fields come alongside."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


def status_for(error: GridLedgerError) -> int:
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return 500


def problem(
    status: int,
    *,
    code: str,
    title: str,
    detail: str | None,
    instance: str | None,
    **extensions: object,
) -> JSONResponse:
    body: dict[str, object] = {"type": PROBLEM_BASE + code, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extensions)
    headers: dict[str, str] = {}
    if status == 429 and "retry_after" in extensions:
        headers["Retry-After"] = str(extensions["retry_after"])
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def problem_of(error: GridLedgerError, instance: str | None) -> JSONResponse:
    """The problem response for a domain error."""
    return problem(
        status_for(error),
        code=error.code,
        title=error.title,
        detail=error.detail,
        instance=instance,
        **error.extensions,
    )


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(GridLedgerError)
    async def domain_error(request: Request, error: GridLedgerError) -> JSONResponse:
        return problem_of(error, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()
        ]
        return problem(
            422,
            code="validation-error",
            title="Request validation failed",
            detail=f"{len(errors)} invalid field(s)",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {
            404: "not-found",
            405: "method-not-allowed",
            401: "unauthenticated",
            403: "permission-denied",
        }.get(error.status_code, f"http-{error.status_code}")
        return problem(
            error.status_code,
            code=code,
            title=str(error.detail),
            detail=None,
            instance=request.url.path,
        )

    @app.exception_handler(SQLAlchemyTimeout)
    @app.exception_handler(OperationalError)
    async def database_unavailable(request: Request, error: Exception) -> JSONResponse:
        log.warning("database unavailable on %s: %s", request.url.path, type(error).__name__)
        return problem(
            503,
            code=ServiceUnavailable.code,
            title=ServiceUnavailable.title,
            detail="the database is unavailable; retry later",
            instance=request.url.path,
        )

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return problem(
            500,
            code="internal-error",
            title="Internal server error",
            detail="the error was logged; retry later",
            instance=request.url.path,
        )

"""The project's exception root and the generic domain error families.

Business logic raises these; only the API edge (`backend/api/problems.py`) turns them into
HTTP status codes and RFC 9457 problem details. Each error has a stable `code`, which
becomes the problem `type`.
"""

from __future__ import annotations

from typing import Any


class GridLedgerError(Exception):
    """Base of every error GridLedger raises on purpose."""

    code = "gridledger-error"
    title = "GridLedger error"

    def __init__(self, detail: str = "", **extensions: Any):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions


class ConfigurationError(GridLedgerError):
    """Settings that cannot be used as given (e.g. a development secret in production)."""

    code = "configuration-error"
    title = "Invalid configuration"


class NotFound(GridLedgerError):
    code = "not-found"
    title = "Resource not found"


class Conflict(GridLedgerError):
    code = "conflict"
    title = "Conflict with the current state"


class InvalidInput(GridLedgerError):
    """Well-formed input that the domain rejects (bad period, unknown meter, ...)."""

    code = "invalid-input"
    title = "Invalid input"


class Unauthenticated(GridLedgerError):
    code = "unauthenticated"
    title = "Authentication required"


class PermissionDenied(GridLedgerError):
    code = "permission-denied"
    title = "Not allowed"


class RateLimited(GridLedgerError):
    code = "rate-limited"
    title = "Too many requests"


class ServiceUnavailable(GridLedgerError):
    """A dependency (database, Redis, chain RPC) cannot be reached."""

    code = "service-unavailable"
    title = "A dependency is unavailable"

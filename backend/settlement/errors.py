"""Errors of the settlement domain."""

from backend.core.errors import NotFound, PermissionDenied


class ReconciliationNotFound(NotFound):
    code = "reconciliation-not-found"
    title = "No reconciliation record for this trade (yet)"


class ReconciliationAccessDenied(PermissionDenied):
    code = "reconciliation-access-denied"
    title = "Only the trade's parties and operators may see its reconciliation"

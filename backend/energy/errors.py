"""Errors of the energy domain (mapped to problem details in backend/api/problems.py)."""

from backend.core.errors import NotFound


class TransferNotFound(NotFound):
    """No ENERGY trade with this id that the caller may see; keeps the generic `not-found` code
    and title, so an unknown id and someone else's transfer read the same."""

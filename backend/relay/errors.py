"""Errors of the relay domain (mapped to problem details in backend/api/problems.py)."""

from backend.core.errors import Conflict, InvalidInput


class RelayRejected(InvalidInput):
    code = "relay-rejected"
    title = "The transaction cannot be relayed"


class RelaySendFailed(Conflict):
    code = "relay-send-failed"
    title = "The node refused the transaction"

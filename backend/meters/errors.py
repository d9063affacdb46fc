"""Errors of the meters domain (mapped to problem details in backend/api/problems.py)."""

from backend.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied


class MeterNotFound(NotFound):
    code = "meter-not-found"
    title = "Unknown meter"


class MeterAccessDenied(PermissionDenied):
    code = "meter-access-denied"
    title = "Only the meter's owner may read its data"


class MeterAlreadyRegistered(Conflict):
    code = "meter-already-registered"
    title = "A meter with this name is already registered"


class ReadingRejectedError(InvalidInput):
    code = "reading-rejected"
    title = "The reading was rejected"


class ReadingsMalformed(InvalidInput):
    code = "readings-malformed"
    title = "The request body is not a JSON array or NDJSON of readings"


class ReadingBatchTooLarge(InvalidInput):
    code = "reading-batch-too-large"
    title = "Too many readings in one request"


class MeterNameInvalid(InvalidInput):
    code = "meter-name-invalid"
    title = "Invalid meter name"


class MeterSigningKeyMissing(InvalidInput):
    code = "meter-signing-key-missing"
    title = "The meter has no signing key to approve"


class MeterNotApproved(Conflict):
    code = "meter-not-approved"
    title = "The meter is not approved"

"""Errors of the DER registry (mapped to problem details in backend/api/problems.py)."""

from backend.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied


class ResourceNotFound(NotFound):
    code = "resource-not-found"
    title = "Unknown energy resource"


class ResourceAccessDenied(PermissionDenied):
    code = "resource-access-denied"
    title = "Only the resource's owner may change it"


class ResourceDecommissioned(Conflict):
    code = "resource-decommissioned"
    title = "The resource is decommissioned"


class ResourceLimitsInvalid(InvalidInput):
    code = "resource-limits-invalid"
    title = "The resource's capacity, limits or state-of-charge bounds do not fit together"


class TelemetryRejected(InvalidInput):
    code = "telemetry-rejected"
    title = "The telemetry message was rejected"


class StorageBehindCertifiedMeter(Conflict):
    code = "storage-behind-certified-meter"
    title = "Storage and a REC device cannot share a meter"

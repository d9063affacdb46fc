"""Errors of the VPP domain (mapped to problem details in backend/api/problems.py)."""

from backend.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied


class VppNotFound(NotFound):
    code = "vpp-not-found"
    title = "Unknown virtual power plant"


class VppAccessDenied(PermissionDenied):
    code = "vpp-access-denied"
    title = "Only the VPP's aggregator may change it"


class ResourceInAnotherVpp(Conflict):
    code = "resource-in-another-vpp"
    title = "The resource is already a member of a VPP"


class NotAMember(NotFound):
    code = "vpp-membership-not-found"
    title = "The resource is not a member of this VPP"


class ResourceOutsideVppArea(InvalidInput):
    code = "resource-outside-vpp-area"
    title = "The resource is not in the VPP's grid area"


class ScheduleNotFound(NotFound):
    code = "vpp-schedule-not-found"
    title = "Unknown schedule of this VPP"


class MalformedAck(InvalidInput):
    code = "vpp-ack-malformed"
    title = "A device's acknowledgement names no valid command id"

"""Errors of the VTN's services (mapped to problem details at an API edge when one exists)."""

from backend.core.errors import Conflict, InvalidInput, NotFound


class VenNotFound(NotFound):
    code = "ven-not-found"
    title = "Unknown VEN"


class VenExists(Conflict):
    code = "ven-exists"
    title = "A VEN with this id or name is already registered"


class EventInvalid(InvalidInput):
    code = "openadr-event-invalid"
    title = "The OpenADR event cannot be published as given"


class OptInvalid(InvalidInput):
    code = "openadr-opt-invalid"
    title = "The opt schedule cannot be recorded as given"


class OptNotFound(NotFound):
    code = "openadr-opt-not-found"
    title = "Unknown opt"


class VenInvalid(InvalidInput):
    code = "openadr-ven-invalid"
    title = "The VEN cannot be enrolled as given"


class VenCertificateUnavailable(Conflict):
    code = "openadr-ven-certificate-unavailable"
    title = "VEN certificates are issued by the development CA only"

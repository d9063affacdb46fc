"""Errors of the demand-response domain (mapped to problem details in backend/api/problems.py)."""

from backend.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied


class BaselineInputInvalid(InvalidInput):
    code = "dr-baseline-input-invalid"
    title = "The baseline cannot be computed from this input"


class NotEnoughBaselineDays(InvalidInput):
    code = "dr-not-enough-baseline-days"
    title = "Too few eligible days of verified readings for the baseline"


class DrProgramNotFound(NotFound):
    code = "dr-program-not-found"
    title = "Unknown demand-response program"


class DrEventNotFound(NotFound):
    code = "dr-event-not-found"
    title = "Unknown demand-response event"


class DrEnrolmentNotFound(NotFound):
    code = "dr-enrolment-not-found"
    title = "Unknown demand-response enrolment"


class DrAccessDenied(PermissionDenied):
    code = "dr-access-denied"
    title = "Not allowed to change this demand-response record"


class DrEventInvalid(InvalidInput):
    code = "dr-event-invalid"
    title = "The demand-response event is not valid for its program"


class DrEnrolmentInvalid(InvalidInput):
    code = "dr-enrolment-invalid"
    title = "The enrolment is not valid"


class DrAlreadyEnrolled(Conflict):
    code = "dr-already-enrolled"
    title = "The meter or resource is already enrolled in this program"


class DrProgramEventLimit(Conflict):
    code = "dr-program-event-limit"
    title = "The program has already called its maximum number of events"


class DrOptOutTooLate(Conflict):
    code = "dr-opt-out-too-late"
    title = "The event has started; opting out is no longer possible"


class DrOfferNotFound(NotFound):
    code = "dr-offer-not-found"
    title = "Unknown demand-response capacity offer"


class DrOfferInvalid(InvalidInput):
    code = "dr-offer-invalid"
    title = "The demand-response capacity offer is not valid"


class DrOfferNotOpen(Conflict):
    code = "dr-offer-not-open"
    title = "The capacity offer was accepted or withdrawn already"


class DrContractMissing(Conflict):
    code = "dr-contract-missing"
    title = "The deployment has no DemandResponse contract"

"""Demand response (`/v1/dr`): operators define programs and call events, owners enrol meters
or resources and opt out of events; everyone signed in reads them."""

from __future__ import annotations

import time
import uuid

from fastapi import APIRouter

from backend.accounts.models import Role
from backend.api.deps import Reader, SessionDep, Trader, require_role
from backend.api.problem_docs import raises
from backend.dr import evaluation, services
from backend.dr.errors import (
    DrAccessDenied,
    DrAlreadyEnrolled,
    DrEnrolmentNotFound,
    DrEventInvalid,
    DrEventNotFound,
    DrOptOutTooLate,
    DrProgramEventLimit,
    DrProgramNotFound,
)
from backend.dr.schemas import (
    EnrolmentCreate,
    EnrolmentPublic,
    EventCreate,
    EventPerformance,
    EventPublic,
    OptOut,
    ParticipationPublic,
    ProgramCreate,
    ProgramPublic,
)
from backend.meters.errors import MeterAccessDenied, MeterNotFound
from backend.resources.errors import (
    ResourceAccessDenied,
    ResourceDecommissioned,
    ResourceNotFound,
)

router = APIRouter(prefix="/dr", tags=["demand response"])


@router.get("/programs", response_model=list[ProgramPublic])
def list_programs(session: SessionDep, account: Reader) -> list[ProgramPublic]:
    return [services.program_view(session, p) for p in services.list_programs(session)]


@router.post(
    "/programs",
    response_model=ProgramPublic,
    status_code=201,
    dependencies=[require_role(Role.OPERATOR)],
)
def create_program(data: ProgramCreate, session: SessionDep, account: Trader) -> ProgramPublic:
    """Define a DR program you operate (operators)."""
    program = services.create_program(session, account, data)
    session.commit()
    session.refresh(program)
    return services.program_view(session, program)


@router.get(
    "/programs/{program_id}", response_model=ProgramPublic, responses=raises(DrProgramNotFound)
)
def get_program(program_id: uuid.UUID, session: SessionDep, account: Reader) -> ProgramPublic:
    return services.program_view(session, services.get_program(session, program_id))


@router.get(
    "/programs/{program_id}/enrolments",
    response_model=list[EnrolmentPublic],
    responses=raises(DrProgramNotFound),
)
def list_enrolments(
    program_id: uuid.UUID, session: SessionDep, account: Reader
) -> list[EnrolmentPublic]:
    return [services.enrolment_view(e) for e in services.list_enrolments(session, program_id)]


@router.post(
    "/programs/{program_id}/enrolments",
    response_model=EnrolmentPublic,
    status_code=201,
    responses=raises(
        DrProgramNotFound,
        DrAlreadyEnrolled,
        MeterNotFound,
        MeterAccessDenied,
        ResourceNotFound,
        ResourceAccessDenied,
        ResourceDecommissioned,
    ),
)
def enrol(
    program_id: uuid.UUID, data: EnrolmentCreate, session: SessionDep, account: Trader
) -> EnrolmentPublic:
    """Enrol a meter or resource you own (customers and aggregators)."""
    enrolment = services.enrol(session, account, program_id, data)
    session.commit()
    session.refresh(enrolment)
    return services.enrolment_view(enrolment)


@router.delete(
    "/programs/{program_id}/enrolments/{enrolment_id}",
    response_model=EnrolmentPublic,
    responses=raises(DrEnrolmentNotFound, DrAccessDenied),
)
def withdraw(
    program_id: uuid.UUID, enrolment_id: uuid.UUID, session: SessionDep, account: Trader
) -> EnrolmentPublic:
    """Withdraw your enrolment (kept, stamped `withdrawn_at`)."""
    enrolment = services.withdraw(session, account, program_id, enrolment_id)
    session.commit()
    session.refresh(enrolment)
    return services.enrolment_view(enrolment)


@router.get("/events", response_model=list[EventPublic])
def list_events(
    session: SessionDep, account: Reader, program_id: uuid.UUID | None = None
) -> list[EventPublic]:
    return [services.event_view(session, e) for e in services.list_events(session, program_id)]


@router.post(
    "/events",
    response_model=EventPublic,
    status_code=201,
    responses=raises(DrProgramNotFound, DrAccessDenied, DrEventInvalid, DrProgramEventLimit),
    dependencies=[require_role(Role.OPERATOR)],
)
def call_event(data: EventCreate, session: SessionDep, account: Trader) -> EventPublic:
    """Call an event of a program you operate; every open enrolment takes part."""
    event = services.call_event(session, account, data, now=int(time.time()))
    session.commit()
    session.refresh(event)
    return services.event_view(session, event)


@router.get("/events/{event_id}", response_model=EventPublic, responses=raises(DrEventNotFound))
def get_event(event_id: uuid.UUID, session: SessionDep, account: Reader) -> EventPublic:
    return services.event_view(session, services.get_event(session, event_id))


@router.delete(
    "/events/{event_id}",
    response_model=EventPublic,
    responses=raises(DrEventNotFound, DrAccessDenied, DrEventInvalid),
    dependencies=[require_role(Role.OPERATOR)],
)
def cancel_event(event_id: uuid.UUID, session: SessionDep, account: Trader) -> EventPublic:
    """Cancel an event of your program before it starts."""
    event = services.cancel_event(session, account, event_id, now=int(time.time()))
    session.commit()
    session.refresh(event)
    return services.event_view(session, event)


@router.post(
    "/events/{event_id}/opt-outs",
    response_model=ParticipationPublic,
    responses=raises(DrEventNotFound, DrEnrolmentNotFound, DrAccessDenied, DrOptOutTooLate),
)
def opt_out(
    event_id: uuid.UUID, data: OptOut, session: SessionDep, account: Trader
) -> ParticipationPublic:
    """Opt your enrolment out of an event before it starts (recorded, with your reason)."""
    services.opt_out(session, account, event_id, data, now=int(time.time()))
    session.commit()
    view = services.event_view(session, services.get_event(session, event_id))
    return next(p for p in view.participants if p.enrolment_id == data.enrolment_id)


@router.get(
    "/events/{event_id}/performance",
    response_model=EventPerformance,
    responses=raises(DrEventNotFound, DrAccessDenied),
)
def event_performance(
    event_id: uuid.UUID, session: SessionDep, account: Reader
) -> EventPerformance:
    """Baseline, delivered reduction, incentive and penalty per participant, from verified
    readings (the program's operator sees everyone, a participant only their own)."""
    return evaluation.event_performance(session, account, event_id)

"""DR programs, enrolments, events and opt-outs.

Rules kept here (the routes stay thin):
- programs are defined and events called by operators (the route checks `Role.OPERATOR`);
  only the program's own operator calls or cancels its events;
- an account enrols only meters or active resources it owns, a meter at most once per program
  at a time; withdrawing keeps the row (`withdrawn_at`);
- an event lies on 15-minute boundaries within one UTC day, starts at least the program's
  notification lead after it is called, and a program calls at most `max_events` (cancelled
  ones do not count);
- every open enrolment takes part in an event it is called for; its owner may opt out until
  the event starts, and the opt-out is recorded, not deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func
from sqlmodel import Session, col, select

from backend.accounts.models import Account
from backend.core.utc import utc_now
from backend.dr.errors import (
    DrAccessDenied,
    DrAlreadyEnrolled,
    DrEnrolmentInvalid,
    DrEnrolmentNotFound,
    DrEventInvalid,
    DrEventNotFound,
    DrOptOutTooLate,
    DrProgramEventLimit,
    DrProgramNotFound,
)
from backend.dr.models import DrEnrolment, DrEvent, DrParticipation, DrProgram
from backend.dr.schemas import (
    EnrolmentCreate,
    EnrolmentPublic,
    EventCreate,
    EventPublic,
    OptOut,
    ParticipationPublic,
    ProgramCreate,
    ProgramPublic,
)
from backend.meters.models import INTERVAL_SECONDS
from backend.meters.services import owned_meter
from backend.resources.services import writable_resource


def create_program(session: Session, operator: Account, data: ProgramCreate) -> DrProgram:
    program = DrProgram(
        name=data.name,
        program_type=data.program_type.value,
        operator_id=operator.id,
        incentive_per_kwh=data.incentive_per_kwh,
        penalty_per_kwh=data.penalty_per_kwh,
        notification_lead_s=data.notification_lead_s,
        max_events=data.max_events,
        baseline_method=data.baseline_method.value,
        description=data.description,
    )
    session.add(program)
    session.flush()
    return program


def get_program(session: Session, program_id: uuid.UUID) -> DrProgram:
    found = session.get(DrProgram, program_id)
    if found is None:
        raise DrProgramNotFound(f"no program {program_id}", program_id=str(program_id))
    return found


def list_programs(session: Session) -> Sequence[DrProgram]:
    return session.exec(select(DrProgram).order_by(col(DrProgram.created_at))).all()


def events_called(session: Session, program_id: uuid.UUID) -> int:
    """Events of the program that count against `max_events` (not cancelled)."""
    query = (
        select(func.count())
        .select_from(DrEvent)
        .where(DrEvent.program_id == program_id, col(DrEvent.cancelled_at).is_(None))
    )
    return int(session.exec(query).one())


def program_view(session: Session, program: DrProgram) -> ProgramPublic:
    return ProgramPublic.model_validate(
        program.model_dump() | {"events_called": events_called(session, program.id)}
    )


def enrol(
    session: Session, account: Account, program_id: uuid.UUID, data: EnrolmentCreate
) -> DrEnrolment:
    """Enrol a meter or resource `account` owns; its meter's verified readings measure it."""
    program = get_program(session, program_id)
    if data.resource_id is not None:
        resource = writable_resource(session, account, data.resource_id)
        meter_id, resource_id = resource.meter_id, resource.id
    elif data.meter is not None:
        meter_id, resource_id = owned_meter(session, account, data.meter).meter_id, None
    else:  # the schema refuses this; kept for callers that build EnrolmentCreate by hand
        raise DrEnrolmentInvalid("give exactly one of meter and resource_id")
    taken = session.exec(
        select(DrEnrolment).where(
            DrEnrolment.program_id == program.id,
            DrEnrolment.meter_id == meter_id,
            col(DrEnrolment.withdrawn_at).is_(None),
        )
    ).first()
    if taken is not None:
        raise DrAlreadyEnrolled(
            f"meter {meter_id} is already enrolled in program {program.id}",
            meter_id=meter_id,
            enrolment_id=str(taken.id),
        )
    enrolment = DrEnrolment(
        program_id=program.id,
        account_id=account.id,
        meter_id=meter_id,
        resource_id=resource_id,
        committed_w=data.committed_w,
    )
    session.add(enrolment)
    session.flush()
    return enrolment


def get_enrolment(session: Session, program_id: uuid.UUID, enrolment_id: uuid.UUID) -> DrEnrolment:
    found = session.get(DrEnrolment, enrolment_id)
    if found is None or found.program_id != program_id:
        raise DrEnrolmentNotFound(
            f"no enrolment {enrolment_id} in program {program_id}", enrolment_id=str(enrolment_id)
        )
    return found


def list_enrolments(session: Session, program_id: uuid.UUID) -> Sequence[DrEnrolment]:
    get_program(session, program_id)
    return session.exec(
        select(DrEnrolment)
        .where(DrEnrolment.program_id == program_id)
        .order_by(col(DrEnrolment.enrolled_at), col(DrEnrolment.id))
    ).all()


def withdraw(
    session: Session, account: Account, program_id: uuid.UUID, enrolment_id: uuid.UUID
) -> DrEnrolment:
    """End an enrolment (its owner); events already called keep their participation."""
    enrolment = get_enrolment(session, program_id, enrolment_id)
    if enrolment.account_id != account.id:
        raise DrAccessDenied("only the enrolment's owner may withdraw it")
    if enrolment.withdrawn_at is None:
        enrolment.withdrawn_at = utc_now()
        session.add(enrolment)
        session.flush()
    return enrolment


def enrolment_view(enrolment: DrEnrolment) -> EnrolmentPublic:
    return EnrolmentPublic.model_validate(enrolment, from_attributes=True)


def check_event_times(program: DrProgram, *, start: int, end: int, now: int) -> None:
    """15-minute boundaries, end after start, called at least the notification lead ahead."""
    if start % INTERVAL_SECONDS or end % INTERVAL_SECONDS:
        raise DrEventInvalid(
            f"start and end must be multiples of {INTERVAL_SECONDS} s", start=start, end=end
        )
    if end <= start:
        raise DrEventInvalid("the event must end after it starts", start=start, end=end)
    if start // 86_400 != (end - 1) // 86_400:
        raise DrEventInvalid(
            "an event lies within one UTC day (baselines are built per UTC day)",
            start=start,
            end=end,
        )
    earliest = now + program.notification_lead_s
    if start < earliest:
        raise DrEventInvalid(
            f"the program needs {program.notification_lead_s} s notice: start at {earliest} "
            "or later",
            start=start,
            earliest_start=earliest,
        )


def call_event(session: Session, operator: Account, data: EventCreate, *, now: int) -> DrEvent:
    """Call an event of the operator's program for every open enrolment (see module rules)."""
    program = get_program(session, data.program_id)
    if program.operator_id != operator.id:
        raise DrAccessDenied("only the program's operator may call its events")
    check_event_times(program, start=data.start, end=data.end, now=now)
    called = events_called(session, program.id)
    if called >= program.max_events:
        raise DrProgramEventLimit(
            f"program {program.id} has called {called} of {program.max_events} events",
            max_events=program.max_events,
        )
    enrolments = session.exec(
        select(DrEnrolment).where(
            DrEnrolment.program_id == program.id, col(DrEnrolment.withdrawn_at).is_(None)
        )
    ).all()
    by_id = {e.id: e for e in enrolments}
    overrides: dict[uuid.UUID, int] = {}
    for commitment in data.commitments:
        if commitment.enrolment_id not in by_id:
            raise DrEventInvalid(
                f"enrolment {commitment.enrolment_id} is not open in program {program.id}",
                enrolment_id=str(commitment.enrolment_id),
            )
        overrides[commitment.enrolment_id] = commitment.committed_w
    event = DrEvent(
        program_id=program.id,
        created_by=operator.id,
        start=data.start,
        end=data.end,
        signal_type=data.signal_type.value,
        signal_value=data.signal_value,
    )
    session.add(event)
    session.flush()
    for enrolment in enrolments:
        session.add(
            DrParticipation(
                event_id=event.id,
                enrolment_id=enrolment.id,
                committed_w=overrides.get(enrolment.id, enrolment.committed_w),
            )
        )
    session.flush()
    return event


def get_event(session: Session, event_id: uuid.UUID) -> DrEvent:
    found = session.get(DrEvent, event_id)
    if found is None:
        raise DrEventNotFound(f"no event {event_id}", event_id=str(event_id))
    return found


def cancel_event(session: Session, operator: Account, event_id: uuid.UUID, *, now: int) -> DrEvent:
    """Cancel an event that has not started (its program's operator); it stops counting
    against `max_events`. Cancelling twice is a no-op."""
    event = get_event(session, event_id)
    program = get_program(session, event.program_id)
    if program.operator_id != operator.id:
        raise DrAccessDenied("only the program's operator may cancel its events")
    if event.cancelled_at is not None:
        return event
    if now >= event.start:
        raise DrEventInvalid(f"event {event.id} has started", start=event.start)
    event.cancelled_at = utc_now()
    session.add(event)
    session.flush()
    return event


def list_events(session: Session, program_id: uuid.UUID | None = None) -> Sequence[DrEvent]:
    query = select(DrEvent)
    if program_id is not None:
        query = query.where(DrEvent.program_id == program_id)
    return session.exec(query.order_by(col(DrEvent.start), col(DrEvent.id))).all()


def participations(
    session: Session, event_id: uuid.UUID
) -> Sequence[tuple[DrParticipation, DrEnrolment]]:
    rows = session.exec(
        select(DrParticipation, DrEnrolment)
        .join(DrEnrolment, col(DrEnrolment.id) == col(DrParticipation.enrolment_id))
        .where(DrParticipation.event_id == event_id)
        .order_by(col(DrParticipation.id))
    ).all()
    return [(p, e) for p, e in rows]


def opt_out(
    session: Session, account: Account, event_id: uuid.UUID, data: OptOut, *, now: int
) -> DrParticipation:
    """Record the owner's opt-out of an event that has not started (idempotent: a repeat keeps
    the first time and reason)."""
    event = get_event(session, event_id)
    found = session.exec(
        select(DrParticipation, DrEnrolment)
        .join(DrEnrolment, col(DrEnrolment.id) == col(DrParticipation.enrolment_id))
        .where(
            DrParticipation.event_id == event.id, DrParticipation.enrolment_id == data.enrolment_id
        )
    ).first()
    if found is None:
        raise DrEnrolmentNotFound(
            f"enrolment {data.enrolment_id} does not take part in event {event.id}",
            enrolment_id=str(data.enrolment_id),
        )
    participation, enrolment = found
    if enrolment.account_id != account.id:
        raise DrAccessDenied("only the enrolment's owner may opt out")
    if participation.opted_out_at is not None:
        return participation
    if now >= event.start or event.cancelled_at is not None:
        raise DrOptOutTooLate(
            f"event {event.id} started at {event.start} or was cancelled", start=event.start
        )
    participation.opted_out_at = utc_now()
    participation.opt_out_reason = data.reason
    session.add(participation)
    session.flush()
    return participation


def event_view(session: Session, event: DrEvent) -> EventPublic:
    return EventPublic(
        id=event.id,
        program_id=event.program_id,
        created_by=event.created_by,
        start=event.start,
        end=event.end,
        signal_type=event.signal_type,  # type: ignore[arg-type]
        signal_value=event.signal_value,
        created_at=event.created_at,
        cancelled_at=event.cancelled_at,
        participants=[
            ParticipationPublic(
                enrolment_id=e.id,
                meter_id=e.meter_id,
                resource_id=e.resource_id,
                account_id=e.account_id,
                committed_w=p.committed_w,
                opted_out_at=p.opted_out_at,
                opt_out_reason=p.opt_out_reason,
            )
            for p, e in participations(session, event.id)
        ],
    )

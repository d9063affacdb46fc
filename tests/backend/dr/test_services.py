"""DR programs, enrolments, events and opt-outs: who may do what, and what is recorded."""

from __future__ import annotations

import pytest
from sqlmodel import select

from backend.dr import services
from backend.dr.errors import (
    DrAccessDenied,
    DrAlreadyEnrolled,
    DrEventInvalid,
    DrOptOutTooLate,
    DrProgramEventLimit,
)
from backend.dr.models import DrParticipation
from backend.dr.schemas import Commitment, EnrolmentCreate, EventCreate, OptOut
from backend.meters.errors import MeterAccessDenied
from backend.resources.errors import ResourceAccessDenied
from tests.fixtures.dr import add_operator, add_program
from tests.fixtures.resources import add_resource

NOW = 1_800_000_000  # a 15-minute boundary (1_800_000_000 % 900 == 0)
START = NOW + 7_200  # two hours ahead: past the program's one-hour notice


@pytest.fixture
def world(metered):
    session, owner, other, solar, house = metered
    operator = add_operator(session)
    program = add_program(session, operator)
    return session, owner, other, solar, house, operator, program


def event(program, **override) -> EventCreate:
    return EventCreate(
        **({"program_id": program.id, "start": START, "end": START + 3_600} | override)
    )


def test_owners_enrol_their_meters_and_resources_once(world):
    session, owner, other, solar, house, _operator, program = world
    by_meter = services.enrol(
        session, owner, program.id, EnrolmentCreate(meter="meter:house-1", committed_w=2_000)
    )
    assert (by_meter.meter_id, by_meter.resource_id) == (house.meter_id, None)
    battery = add_resource(session, owner)  # behind meter:solar-1
    by_resource = services.enrol(
        session, owner, program.id, EnrolmentCreate(resource_id=battery.id, committed_w=3_000)
    )
    assert (by_resource.meter_id, by_resource.resource_id) == (solar.meter_id, battery.id)
    with pytest.raises(DrAlreadyEnrolled):
        services.enrol(
            session, owner, program.id, EnrolmentCreate(meter="meter:solar-1", committed_w=1)
        )
    with pytest.raises(MeterAccessDenied):
        services.enrol(
            session, other, program.id, EnrolmentCreate(meter="meter:house-1", committed_w=1)
        )
    with pytest.raises(ResourceAccessDenied):
        services.enrol(
            session, other, program.id, EnrolmentCreate(resource_id=battery.id, committed_w=1)
        )
    withdrawn = services.withdraw(session, owner, program.id, by_meter.id)
    assert withdrawn.withdrawn_at is not None
    again = services.enrol(
        session, owner, program.id, EnrolmentCreate(meter="meter:house-1", committed_w=500)
    )
    assert again.id != by_meter.id
    assert len(services.list_enrolments(session, program.id)) == 3  # the withdrawn one is kept


def test_event_takes_every_open_enrolment_with_its_commitment(world):
    session, owner, _other, _solar, _house, operator, program = world
    house = services.enrol(
        session, owner, program.id, EnrolmentCreate(meter="meter:house-1", committed_w=2_000)
    )
    solar = services.enrol(
        session, owner, program.id, EnrolmentCreate(meter="meter:solar-1", committed_w=1_000)
    )
    services.withdraw(session, owner, program.id, solar.id)
    called = services.call_event(
        session,
        operator,
        event(program, commitments=[Commitment(enrolment_id=house.id, committed_w=2_500)]),
        now=NOW,
    )
    view = services.event_view(session, called)
    assert [(p.enrolment_id, p.committed_w) for p in view.participants] == [(house.id, 2_500)]
    assert services.program_view(session, program).events_called == 1


@pytest.mark.parametrize(
    ("start", "end", "reason"),
    [
        (START + 60, START + 3_600, "multiples of 900"),
        (START, START, "end after it starts"),
        (NOW + 900, NOW + 1_800, "needs 3600 s notice"),
        (START, START + 86_400, "within one UTC day"),
    ],
)
def test_event_times_are_checked(world, start, end, reason):
    session, *_rest, operator, program = world
    with pytest.raises(DrEventInvalid, match=reason):
        services.call_event(session, operator, event(program, start=start, end=end), now=NOW)


def test_only_the_programs_operator_calls_and_max_events_holds(world):
    session, *_rest, operator, program = world
    rival = add_operator(session, "rival-utility@example.org")
    with pytest.raises(DrAccessDenied):
        services.call_event(session, rival, event(program), now=NOW)
    first = services.call_event(session, operator, event(program), now=NOW)
    services.call_event(
        session, operator, event(program, start=START + 3_600, end=START + 7_200), now=NOW
    )
    with pytest.raises(DrProgramEventLimit):
        services.call_event(session, operator, event(program), now=NOW)
    services.cancel_event(session, operator, first.id, now=NOW)  # a cancelled one frees a slot
    third = services.call_event(session, operator, event(program), now=NOW)
    assert third.cancelled_at is None and first.cancelled_at is not None


def test_opt_out_is_recorded_by_the_owner_before_the_start(world):
    session, owner, other, _solar, _house, operator, program = world
    enrolment = services.enrol(
        session, owner, program.id, EnrolmentCreate(meter="meter:house-1", committed_w=2_000)
    )
    called = services.call_event(session, operator, event(program), now=NOW)
    with pytest.raises(DrAccessDenied):
        services.opt_out(session, other, called.id, OptOut(enrolment_id=enrolment.id), now=NOW)
    with pytest.raises(DrOptOutTooLate):
        services.opt_out(session, owner, called.id, OptOut(enrolment_id=enrolment.id), now=START)
    first = services.opt_out(
        session, owner, called.id, OptOut(enrolment_id=enrolment.id, reason="away"), now=NOW
    )
    repeat = services.opt_out(
        session, owner, called.id, OptOut(enrolment_id=enrolment.id, reason="other"), now=NOW
    )
    assert (repeat.opted_out_at, repeat.opt_out_reason) == (first.opted_out_at, "away")
    rows = session.exec(select(DrParticipation).where(DrParticipation.event_id == called.id)).all()
    assert len(rows) == 1 and rows[0].opted_out_at is not None

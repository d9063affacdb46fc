"""An event's performance from stored VERIFIED readings: baseline, delivered reduction,
incentive and penalty per participant (what is owed; paying it on chain is a later step).

Per participant that did not opt out: the program's baseline method over the meter's verified
day profiles (backend/dr/readings.py), excluding the UTC days of the meter's other called
(not cancelled) events; then backend/dr/performance.py over the event's intervals. A
participant without enough eligible days is reported `no_baseline`, not guessed.

Methods as configured here: high 4 of 5 with the additive adjustment (PJM), high 5 of 10 and
10 of 10 with the multiplicative adjustment (NYISO, CAISO), each capped at +/-20 %, 45-day
lookback. The weather-regression method needs temperatures, which nothing stores yet: such
programs report `no_baseline` until a weather store exists.
Holidays (backend/dr/holiday_calendar.py, from settings) count as weekend days: a holiday in
the lookback is not a weekday baseline day.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import date, timedelta

from sqlmodel import Session, col, select

from backend.accounts.models import Account
from backend.dr import services
from backend.dr.baselines import (
    INTERVAL_SECONDS,
    INTERVALS_PER_DAY,
    Adjustment,
    AdjustmentKind,
    Baseline,
    Window,
    adjust,
    high_x_of_y,
)
from backend.dr.errors import BaselineInputInvalid, DrAccessDenied, NotEnoughBaselineDays
from backend.dr.holiday_calendar import HolidayCalendar
from backend.dr.models import BaselineMethod, DrEnrolment, DrEvent, DrParticipation, DrProgram
from backend.dr.performance import evaluate
from backend.dr.readings import complete_days, day_start, utc_day, verified_day_loads
from backend.dr.schemas import EventPerformance, IntervalPerformancePublic, ParticipantPerformance

LOOKBACK_DAYS = 45
HIGH_X_OF_Y: dict[BaselineMethod, tuple[int, int, AdjustmentKind]] = {
    BaselineMethod.HIGH_4_OF_5: (4, 5, AdjustmentKind.ADDITIVE),
    BaselineMethod.HIGH_5_OF_10: (5, 10, AdjustmentKind.MULTIPLICATIVE),
    BaselineMethod.TEN_OF_TEN: (10, 10, AdjustmentKind.MULTIPLICATIVE),
}


def event_window(event: DrEvent) -> tuple[date, Window]:
    """The event's UTC day and its intervals within that day (events lie within one UTC day)."""
    day = utc_day(event.start)
    first = (event.start - day_start(day)) // INTERVAL_SECONDS
    last = (event.end - day_start(day)) // INTERVAL_SECONDS
    if last > INTERVALS_PER_DAY:
        raise BaselineInputInvalid("the event crosses midnight UTC", event_id=str(event.id))
    return day, Window(first, last)


def other_event_days(session: Session, meter_id: str, event: DrEvent) -> set[date]:
    """UTC days of the meter's other called events (NAESB: event days are not baseline days)."""
    starts = session.exec(
        select(DrEvent.start)
        .join(DrParticipation, col(DrParticipation.event_id) == col(DrEvent.id))
        .join(DrEnrolment, col(DrEnrolment.id) == col(DrParticipation.enrolment_id))
        .where(
            DrEnrolment.meter_id == meter_id,
            col(DrEvent.id) != event.id,
            col(DrEvent.cancelled_at).is_(None),
        )
    ).all()
    return {utc_day(s) for s in starts}


def baseline_for(
    program: DrProgram,
    days: dict[date, list[int | None]],
    *,
    event_day: date,
    window: Window,
    excluded: set[date],
    holidays: Collection[date] = (),
) -> Baseline:
    method = BaselineMethod(program.baseline_method)
    if method not in HIGH_X_OF_Y:
        raise NotEnoughBaselineDays(
            "weather-regression baselines need stored temperatures (not available yet)",
            found=0,
            needed=0,
        )
    x, y, kind = HIGH_X_OF_Y[method]
    raw = high_x_of_y(
        complete_days(days),
        event_day=event_day,
        event_window=window,
        x=x,
        y=y,
        excluded=excluded,
        holidays=holidays,
        lookback_days=LOOKBACK_DAYS,
    )
    return adjust(
        raw,
        actual=days.get(event_day, [None] * INTERVALS_PER_DAY),
        event_window=window,
        adjustment=Adjustment(kind=kind),
    )


def participant_performance(
    session: Session,
    program: DrProgram,
    event: DrEvent,
    participation: DrParticipation,
    enrolment: DrEnrolment,
    calendar: HolidayCalendar,
) -> ParticipantPerformance:
    base = ParticipantPerformance(
        enrolment_id=enrolment.id,
        account_id=enrolment.account_id,
        meter_id=enrolment.meter_id,
        committed_w=participation.committed_w,
        status="opted_out",
    )
    if participation.opted_out_at is not None:
        return base
    event_day, window = event_window(event)
    first = event_day - timedelta(days=LOOKBACK_DAYS)
    days = verified_day_loads(session, enrolment.meter_id, first=first, last=event_day)
    try:
        baseline = baseline_for(
            program,
            days,
            event_day=event_day,
            window=window,
            excluded=other_event_days(session, enrolment.meter_id, event),
            holidays=calendar.between(first, event_day),
        )
    except NotEnoughBaselineDays as exc:
        return base.model_copy(update={"status": "no_baseline", "detail": exc.detail})
    actual = days.get(event_day, [None] * INTERVALS_PER_DAY)
    result = evaluate(
        interval_starts=list(range(event.start, event.end, INTERVAL_SECONDS)),
        baseline_wh=baseline.over(window),
        metered_wh=actual[window.start : window.end],
        committed_w=participation.committed_w,
        incentive_per_kwh=program.incentive_per_kwh,
        penalty_per_kwh=program.penalty_per_kwh,
    )
    return base.model_copy(
        update={
            "status": "evaluated",
            "baseline_days": [d.isoformat() for d in baseline.days],
            "credited_wh": result.credited_wh,
            "shortfall_wh": result.shortfall_wh,
            "incentive": result.incentive,
            "penalty": result.penalty,
            "intervals": [
                IntervalPerformancePublic.model_validate(r, from_attributes=True)
                for r in result.intervals
            ],
        }
    )


def event_performance(
    session: Session, account: Account, event_id: uuid.UUID, calendar: HolidayCalendar
) -> EventPerformance:
    """Every participant's performance for the program's operator; only one's own otherwise."""
    event = services.get_event(session, event_id)
    program = services.get_program(session, event.program_id)
    rows = services.participations(session, event.id)
    if program.operator_id != account.id:
        rows = [(p, e) for p, e in rows if e.account_id == account.id]
        if not rows:
            raise DrAccessDenied("only the operator and the participants see an event's results")
    return EventPerformance(
        event_id=event.id,
        baseline_method=BaselineMethod(program.baseline_method),
        participants=[
            participant_performance(session, program, event, p, e, calendar) for p, e in rows
        ],
    )

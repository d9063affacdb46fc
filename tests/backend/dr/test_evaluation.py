"""An event evaluated from stored readings: only verified readings count, the baseline uses
the program's method, opted-out participants owe and earn nothing, participants see only
their own results."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import Session

from backend.accounts.models import Account
from backend.dr import services
from backend.dr.errors import DrAccessDenied
from backend.dr.evaluation import event_performance
from backend.dr.holiday_calendar import NO_HOLIDAYS, HolidayCalendar
from backend.dr.models import DrEvent
from backend.dr.readings import day_start, utc_day
from backend.dr.schemas import EnrolmentCreate, EventCreate, OptOut
from backend.meters.models import MeterReading
from tests.fixtures.dr import add_operator, add_program

EVENT_START = 1_800_007_200  # 10:00 UTC on a Friday (2027-01-15)
CALLED_AT = EVENT_START - 7_200


def weekdays_before(day: date, n: int) -> list[date]:
    out, d = [], day
    while len(out) < n:
        d -= timedelta(days=1)
        if d.weekday() < 5:
            out.append(d)
    return out


def put_day(session, meter_id: str, day: date, loads: dict[int, int], *, verified: bool = True):
    base = day_start(day)
    session.add_all(
        MeterReading(
            meter_id=meter_id,
            interval_start=base + 900 * i,
            import_wh=wh,
            export_wh=0,
            source="rest",
            verified=verified,
        )
        for i, wh in loads.items()
    )
    session.flush()


def put_history(session, meter_id: str, older: list[date], event_day: date, event: dict[int, int]):
    """Five verified weekdays at 1000, 1000, 1000, 1000 and 600 Wh per interval (high 4 of 5 =
    1000), and the event day at 1000 Wh before 10:00 then `event` (interval -> Wh)."""
    for day, level in zip(older, [1_000, 1_000, 1_000, 1_000, 600], strict=True):
        put_day(session, meter_id, day, dict.fromkeys(range(96), level))
    put_day(session, meter_id, event_day, dict.fromkeys(range(40), 1_000) | event)


def house_event(session: Session, owner: Account, *, hours: int) -> tuple[Account, DrEvent]:
    """An operator's high-4-of-5 program (300 / 150 token units per kWh) with meter:house-1
    enrolled at 2000 W and meter:solar-1 at 1000 W, and an event of `hours` from EVENT_START."""
    operator = add_operator(session)
    program = add_program(session, operator)
    for meter, committed_w in (("meter:house-1", 2_000), ("meter:solar-1", 1_000)):
        services.enrol(
            session, owner, program.id, EnrolmentCreate(meter=meter, committed_w=committed_w)
        )
    event = services.call_event(
        session,
        operator,
        EventCreate(program_id=program.id, start=EVENT_START, end=EVENT_START + 3_600 * hours),
        now=CALLED_AT,
    )
    return operator, event


def test_event_performance_from_verified_readings(metered):
    session, owner, other, solar, house = metered
    operator, event = house_event(session, owner, hours=1)
    away = next(
        e for p, e in services.participations(session, event.id) if e.meter_id == solar.meter_id
    )
    services.opt_out(session, owner, event.id, OptOut(enrolment_id=away.id), now=CALLED_AT)

    event_day = utc_day(EVENT_START)
    assert event_day == date(2027, 1, 15)
    recent, *older = weekdays_before(event_day, 6)
    # the most recent weekday: 5000 Wh but unverified -> not a baseline day
    put_day(session, house.meter_id, recent, dict.fromkeys(range(96), 5_000), verified=False)
    # five verified weekdays: 1000, 1000, 1000, 1000, 600 -> high 4 of 5 = 1000 per interval
    # event day: 1000 Wh until 10:00 (the adjustment window 06:00-09:00 matches: no shift),
    # then 400, 700, 1200 and one interval with only an UNVERIFIED reading (0 Wh: not counted)
    put_history(session, house.meter_id, older, event_day, {40: 400, 41: 700, 42: 1_200})

    put_day(session, house.meter_id, event_day, {43: 0}, verified=False)

    result = event_performance(session, operator, event.id, NO_HOLIDAYS)
    by_meter = {p.meter_id: p for p in result.participants}
    got = by_meter[house.meter_id]
    # committed 2000 W -> 500 Wh per interval; as in test_performance's hand computation:
    # credited 600 + 300 = 900 Wh -> 270; shortfall 0 + 200 + 500 + 500 = 1200 Wh -> 180
    assert got.status == "evaluated"
    assert got.baseline_days == [d.isoformat() for d in older[:4]]
    assert [i.baseline_wh for i in got.intervals] == [1_000] * 4
    assert [i.metered_wh for i in got.intervals] == [400, 700, 1_200, None]
    assert (got.credited_wh, got.shortfall_wh, got.incentive, got.penalty) == (900, 1_200, 270, 180)
    assert by_meter[solar.meter_id].status == "opted_out"
    assert (by_meter[solar.meter_id].incentive, by_meter[solar.meter_id].penalty) == (0, 0)

    own = event_performance(session, owner, event.id, NO_HOLIDAYS)
    assert {p.account_id for p in own.participants} == {owner.id}
    with pytest.raises(DrAccessDenied):
        event_performance(session, other, event.id, NO_HOLIDAYS)


def test_a_meter_without_history_has_no_baseline(metered):
    session, owner, _other, _solar, house = metered
    operator, event = house_event(session, owner, hours=1)
    results = event_performance(session, operator, event.id, NO_HOLIDAYS).participants
    (only,) = [p for p in results if p.meter_id == house.meter_id]
    assert only.status == "no_baseline" and "need 5" in (only.detail or "")
    assert (only.incentive, only.penalty) == (0, 0)


def test_a_holiday_in_the_lookback_is_not_a_weekday_baseline_day(metered):
    session, owner, _other, _solar, house = metered
    operator, event = house_event(session, owner, hours=1)
    event_day = utc_day(EVENT_START)
    holiday, *older = weekdays_before(event_day, 6)  # Thu 2027-01-14 and five weekdays before
    # the holiday drew 2000 Wh per interval; the five weekdays 1000, 1000, 1000, 1000, 600
    put_day(session, house.meter_id, holiday, dict.fromkeys(range(96), 2_000))
    # event day: 1000 Wh before the event (06:00-09:00 adjustment window), 500 Wh during it
    put_history(session, house.meter_id, older, event_day, dict.fromkeys(range(40, 44), 500))

    def house_result(calendar: HolidayCalendar):
        result = event_performance(session, operator, event.id, calendar)
        return next(p for p in result.participants if p.meter_id == house.meter_id)

    # holiday configured: the 5 similar days are the older five -> high 4 = 1000 per interval;
    # adjustment window: actual 1000 = baseline 1000 (no shift); delivered 500 per interval,
    # committed 500 -> credited 4 x 500 = 2000 Wh -> 2000 * 300 / 1000 = 600, no shortfall
    got = house_result(HolidayCalendar(dates=frozenset({holiday})))
    assert got.baseline_days == [d.isoformat() for d in older[:4]]
    assert [i.baseline_wh for i in got.intervals] == [1_000] * 4
    assert (got.credited_wh, got.shortfall_wh, got.incentive, got.penalty) == (2_000, 0, 600, 0)

    # without it the day counts: days 2000, 1000, 1000, 1000, 1000 -> high 4 = (2000 + 3 x 1000)
    # / 4 = 1250; the additive adjustment (1000 - 1250 = -250) is capped at 20 % of 1250 = -250:
    # baseline 1000 again, so the unadjusted baseline days show the difference
    plain = house_result(NO_HOLIDAYS)
    assert plain.baseline_days == [holiday.isoformat()] + [d.isoformat() for d in older[:3]]

"""EiOpt (IEC 62746-10-1 §6.4): a VEN's opt-in / opt-out schedules, and what they mean for an
event the VTN is about to deliver.

An oadrCreateOpt either names an event (`qualifiedEventID`: the same as an oadrCreatedEvent
answer for that event) or carries availability windows (`vavailability`): a schedule that
holds until oadrCancelOpt. When the VTN queues an event for a VEN (`apply_schedule`), the
latest live schedule with a window overlapping the event decides the delivery's opt (source
`schedule`); the event is still delivered, and the VEN's own answer to it replaces the
schedule's. Windows are unix seconds [start, end).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from backend.core.utc import utc_now
from backend.openadr.errors import OptInvalid, OptNotFound
from backend.openadr.models import (
    EventDelivery,
    OptSchedule,
    OptSource,
    OptType,
    OptWindow,
    VtnEvent,
)


@dataclass(frozen=True)
class Window:
    start: datetime  # UTC
    duration_s: int


def create_schedule(
    session: Session,
    *,
    ven_id: str,
    opt_id: str,
    opt_type: str,
    opt_reason: str,
    windows: Sequence[Window],
    market_context: str | None = None,
) -> OptSchedule:
    """Record an opt schedule; an `opt_id` the VEN used before replaces that schedule (its
    windows too). Flushed, not committed."""
    if opt_type not in set(OptType):
        raise OptInvalid(f"optType {opt_type!r} is neither optIn nor optOut")
    if not windows or any(w.duration_s <= 0 or w.start.tzinfo is None for w in windows):
        raise OptInvalid("an opt schedule needs windows with a UTC start and a positive duration")
    schedule = session.get(OptSchedule, opt_id)
    if schedule is not None and schedule.ven_id != ven_id:
        raise OptInvalid(f"optID {opt_id!r} belongs to another VEN")
    if schedule is None:
        schedule = OptSchedule(opt_id=opt_id, ven_id=ven_id, opt_type=opt_type, opt_reason="")
    for window in session.exec(select(OptWindow).where(OptWindow.opt_id == opt_id)):
        session.delete(window)
    schedule.opt_type, schedule.opt_reason = opt_type, opt_reason[:32]
    schedule.market_context, schedule.cancelled_at = market_context, None
    schedule.created_at = utc_now()
    session.add(schedule)
    session.flush()
    for w in windows:
        start = int(w.start.timestamp())
        session.add(OptWindow(opt_id=opt_id, start=start, end=start + w.duration_s))
    session.flush()
    return schedule


def cancel_schedule(session: Session, *, ven_id: str, opt_id: str) -> OptSchedule:
    """oadrCancelOpt: the schedule stops counting for events queued from now on."""
    schedule = session.get(OptSchedule, opt_id)
    if schedule is None or schedule.ven_id != ven_id or schedule.cancelled_at is not None:
        raise OptNotFound(f"VEN {ven_id!r} has no live opt {opt_id!r}")
    schedule.cancelled_at = utc_now()
    session.add(schedule)
    session.flush()
    return schedule


def deciding_schedule(session: Session, *, ven_id: str, event: VtnEvent) -> OptSchedule | None:
    """The latest live schedule of `ven_id` with a window overlapping `event` (in its market
    context or in all)."""
    start = min(int(i["start"]) for i in event.intervals)
    end = max(int(i["start"]) + int(i["duration_s"]) for i in event.intervals)
    return session.exec(
        select(OptSchedule)
        .join(OptWindow, col(OptWindow.opt_id) == col(OptSchedule.opt_id))
        .where(OptSchedule.ven_id == ven_id)
        .where(col(OptSchedule.cancelled_at).is_(None))
        .where(
            col(OptSchedule.market_context).is_(None)
            | (col(OptSchedule.market_context) == event.market_context)
        )
        .where(col(OptWindow.start) < end, col(OptWindow.end) > start)
        .order_by(col(OptSchedule.created_at).desc())
    ).first()


def apply_schedule(session: Session, *, delivery: EventDelivery, event: VtnEvent) -> str | None:
    """Before queuing: a delivery without the VEN's own answer takes the opt of its deciding
    schedule (recorded with the schedule's id). The opt type applied, if any."""
    if delivery.opt_source == OptSource.EVENT:
        return None
    schedule = deciding_schedule(session, ven_id=delivery.ven_id, event=event)
    if schedule is None:
        return None
    delivery.opt_type = schedule.opt_type
    delivery.opt_source = OptSource.SCHEDULE
    delivery.opt_id = schedule.opt_id
    delivery.opted_at = utc_now()
    session.add(delivery)
    session.flush()
    return schedule.opt_type

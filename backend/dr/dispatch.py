"""Tell the participants of a called DR event: their VENs through the VTN, their VPPs by a
notification the VPP's next optimisation reads.

- VENs: every active VEN that reports for a participating meter (`openadr_ven_meters`) gets the
  event through `backend.openadr.services.publish_event`, one 15-minute interval per period of
  the event with the event's signal, `reference` = the DR event's id;
- VPPs: every VPP with an open membership of a participating resource gets one
  `DrVppNotification` with the window and the committed reduction of its members.
An event with neither is still called: participants read it in the API.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from backend.dr import services
from backend.dr.models import DrEvent, DrVppNotification
from backend.meters.models import INTERVAL_SECONDS
from backend.openadr.models import SignalName, Ven, VenMeter, VtnEvent
from backend.openadr.services import Interval, publish_event
from backend.vpp.models import VppMembership


@dataclass(frozen=True)
class Dispatched:
    vtn_event: VtnEvent | None
    ven_ids: list[str]
    vpp_notifications: list[DrVppNotification]


def event_intervals(event: DrEvent) -> list[Interval]:
    return [
        Interval(
            start=datetime.fromtimestamp(start, UTC),
            duration_s=INTERVAL_SECONDS,
            value=event.signal_value,
        )
        for start in range(event.start, event.end, INTERVAL_SECONDS)
    ]


def dispatch_event(session: Session, event: DrEvent) -> Dispatched:
    """Publish `event` to the VENs and VPPs of its participants (flushed, not committed)."""
    rows = [(p, e) for p, e in services.participations(session, event.id) if p.opted_out_at is None]
    meters = {e.meter_id for _, e in rows}
    ven_ids = sorted(
        session.exec(
            select(VenMeter.ven_id)
            .join(Ven, col(Ven.ven_id) == col(VenMeter.ven_id))
            .where(col(VenMeter.meter_id).in_(meters), col(Ven.active).is_(True))
            .distinct()
        ).all()
    )
    vtn_event = None
    if ven_ids:
        vtn_event = publish_event(
            session,
            signal=SignalName(event.signal_type),
            intervals=event_intervals(event),
            ven_ids=ven_ids,
            reference=str(event.id),
        )
    committed = {e.resource_id: p.committed_w for p, e in rows if e.resource_id is not None}
    by_vpp: dict[uuid.UUID, list[int]] = defaultdict(list)
    for membership in session.exec(
        select(VppMembership).where(
            col(VppMembership.resource_id).in_(committed.keys()),
            col(VppMembership.left_at).is_(None),
        )
    ).all():
        by_vpp[membership.vpp_id].append(committed[membership.resource_id])
    notifications = [
        DrVppNotification(
            event_id=event.id,
            vpp_id=vpp_id,
            start=event.start,
            end=event.end,
            committed_w=sum(watts),
            resources=len(watts),
        )
        for vpp_id, watts in by_vpp.items()
    ]
    session.add_all(notifications)
    session.flush()
    return Dispatched(vtn_event, list(ven_ids), notifications)

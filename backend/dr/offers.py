"""DR trading (ITU-T Y.2072): aggregators offer reduction capacity, a utility buys it.

Accepting an offer creates, for the accepting operator, a one-event ECONOMIC program with the
offer's price as incentive and its penalty, enrols the offer's meter (or resource) for the
aggregator with the offered capacity, and calls the event over the offer's window; the caller
dispatches it (backend/dr/dispatch.py). Settlement then follows the baseline performance like
any event (backend/dr/settlement.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlmodel import Session, col, select

from backend.accounts.models import Account
from backend.core.utc import utc_now
from backend.dr import services
from backend.dr.errors import DrAccessDenied, DrOfferInvalid, DrOfferNotFound, DrOfferNotOpen
from backend.dr.models import DrEvent, DrOffer, DrOfferStatus, ProgramType, SignalType
from backend.dr.schemas import (
    EnrolmentCreate,
    EventCreate,
    OfferCreate,
    OfferPublic,
    ProgramCreate,
)
from backend.meters.models import INTERVAL_SECONDS
from backend.meters.services import owned_meter
from backend.resources.services import writable_resource


def create_offer(session: Session, aggregator: Account, data: OfferCreate, *, now: int) -> DrOffer:
    """Offer capacity on a meter or resource the aggregator owns, over a future window on
    15-minute boundaries within one UTC day."""
    if data.start % INTERVAL_SECONDS or data.end % INTERVAL_SECONDS or data.end <= data.start:
        raise DrOfferInvalid(
            f"the window must end after it starts, on {INTERVAL_SECONDS} s boundaries",
            start=data.start,
            end=data.end,
        )
    if data.start // 86_400 != (data.end - 1) // 86_400:
        raise DrOfferInvalid("the window lies within one UTC day", start=data.start, end=data.end)
    if data.start <= now:
        raise DrOfferInvalid("the window must start in the future", start=data.start, now=now)
    if data.resource_id is not None:
        resource = writable_resource(session, aggregator, data.resource_id)
        meter_id, resource_id = resource.meter_id, resource.id
    else:
        assert data.meter is not None  # the schema asks for exactly one
        meter_id, resource_id = owned_meter(session, aggregator, data.meter).meter_id, None
    offer = DrOffer(
        aggregator_id=aggregator.id,
        meter_id=meter_id,
        resource_id=resource_id,
        start=data.start,
        end=data.end,
        capacity_w=data.capacity_w,
        price_per_kwh=data.price_per_kwh,
        penalty_per_kwh=data.penalty_per_kwh,
        baseline_method=data.baseline_method.value,
    )
    session.add(offer)
    session.flush()
    return offer


def get_offer(session: Session, offer_id: uuid.UUID) -> DrOffer:
    found = session.get(DrOffer, offer_id)
    if found is None:
        raise DrOfferNotFound(f"no offer {offer_id}", offer_id=str(offer_id))
    return found


def list_offers(session: Session, status: DrOfferStatus | None = None) -> Sequence[DrOffer]:
    query = select(DrOffer)
    if status is not None:
        query = query.where(DrOffer.status == status)
    return session.exec(query.order_by(col(DrOffer.start), col(DrOffer.id))).all()


def accept_offer(
    session: Session, operator: Account, offer_id: uuid.UUID, *, now: int
) -> tuple[DrOffer, DrEvent]:
    """Buy an open offer (see the module docstring); flushed, not committed."""
    offer = get_offer(session, offer_id)
    if offer.status != DrOfferStatus.OPEN:
        raise DrOfferNotOpen(f"offer {offer.id} is {offer.status}", offer_status=offer.status)
    if offer.start <= now:
        raise DrOfferInvalid("the offer's window has started", start=offer.start, now=now)
    aggregator = session.get(Account, offer.aggregator_id)
    if aggregator is None:  # the foreign key keeps it; kept for the type checker
        raise DrOfferNotFound(f"offer {offer.id} has no aggregator")
    program = services.create_program(
        session,
        operator,
        ProgramCreate(
            name=f"DR capacity offer {offer.id}",
            program_type=ProgramType.ECONOMIC,
            incentive_per_kwh=offer.price_per_kwh,
            penalty_per_kwh=offer.penalty_per_kwh,
            notification_lead_s=0,
            max_events=1,
            baseline_method=offer.baseline_method,  # type: ignore[arg-type]
            description=f"bought from aggregator {aggregator.id}",
        ),
    )
    services.enrol(
        session,
        aggregator,
        program.id,
        EnrolmentCreate(
            meter=None if offer.resource_id else offer.meter_id,
            resource_id=offer.resource_id,
            committed_w=offer.capacity_w,
        ),
    )
    event = services.call_event(
        session,
        operator,
        EventCreate(
            program_id=program.id,
            start=offer.start,
            end=offer.end,
            signal_type=SignalType.LOAD_DISPATCH,
            signal_value=offer.capacity_w,
        ),
        now=now,
    )
    offer.status = DrOfferStatus.ACCEPTED
    offer.accepted_by, offer.accepted_at = operator.id, utc_now()
    offer.program_id, offer.event_id = program.id, event.id
    session.add(offer)
    session.flush()
    return offer, event


def withdraw_offer(session: Session, aggregator: Account, offer_id: uuid.UUID) -> DrOffer:
    offer = get_offer(session, offer_id)
    if offer.aggregator_id != aggregator.id:
        raise DrAccessDenied("only the offering aggregator may withdraw its offer")
    if offer.status == DrOfferStatus.ACCEPTED:
        raise DrOfferNotOpen(f"offer {offer.id} is accepted", offer_status=offer.status)
    offer.status = DrOfferStatus.WITHDRAWN
    session.add(offer)
    session.flush()
    return offer


def offer_view(offer: DrOffer) -> OfferPublic:
    return OfferPublic.model_validate(offer, from_attributes=True)

"""Demand response (`/v1/dr`): operators define programs and call events (dispatched to the
participants' VENs and VPPs), owners enrol meters or resources and opt out of events;
aggregators offer DR capacity that operators buy; results are settled on chain
(DemandResponse) and paid out by pull; everyone signed in reads programs, events and offers."""

from __future__ import annotations

import time
import uuid

from fastapi import APIRouter
from sqlmodel import select

from backend.accounts.models import Role
from backend.api.deps import ChainDep, Reader, SessionDep, SettingsDep, Trader, require_role
from backend.api.problem_docs import raises
from backend.chain.wallet_calls import WalletMustSign
from backend.dr import dispatch, evaluation, offers, payments, services, settlement
from backend.dr.errors import (
    DrAccessDenied,
    DrAlreadyEnrolled,
    DrContractMissing,
    DrEnrolmentNotFound,
    DrEventInvalid,
    DrEventNotFound,
    DrOfferInvalid,
    DrOfferNotFound,
    DrOfferNotOpen,
    DrOptOutTooLate,
    DrProgramEventLimit,
    DrProgramNotFound,
)
from backend.dr.holiday_calendar import HolidayCalendar
from backend.dr.models import DrOfferStatus, DrVppNotification
from backend.dr.schemas import (
    EnrolmentCreate,
    EnrolmentPublic,
    EscrowCreate,
    EscrowPosted,
    EventCreate,
    EventPerformance,
    EventPublic,
    EventSettlement,
    OfferCreate,
    OfferPublic,
    OptOut,
    ParticipationPublic,
    ProgramCreate,
    ProgramPublic,
    VppNotificationPublic,
)
from backend.energy.errors import NothingToWithdraw
from backend.energy.schemas import Withdrawal
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
    """Call an event of a program you operate; every open enrolment takes part. The event is
    published to the VENs of the participating meters (OpenADR) and to the VPPs of the
    participating resources."""
    event = services.call_event(session, account, data, now=int(time.time()))
    dispatch.dispatch_event(session, event)
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
    event_id: uuid.UUID, session: SessionDep, account: Reader, settings: SettingsDep
) -> EventPerformance:
    """Baseline, delivered reduction, incentive and penalty per participant, from verified
    readings (the program's operator sees everyone, a participant only their own)."""
    calendar = HolidayCalendar.from_settings(settings)
    return evaluation.event_performance(session, account, event_id, calendar)


@router.get(
    "/events/{event_id}/settlement",
    response_model=EventSettlement,
    responses=raises(DrEventNotFound, DrAccessDenied),
)
def event_settlement(event_id: uuid.UUID, session: SessionDep, account: Reader) -> EventSettlement:
    """Incentive and penalty per participant as posted on chain, with transaction hashes
    (the program's operator sees everyone, a participant only their own)."""
    return settlement.event_settlement(session, account, event_id)


@router.get(
    "/events/{event_id}/vpp-notifications",
    response_model=list[VppNotificationPublic],
    responses=raises(DrEventNotFound),
)
def vpp_notifications(
    event_id: uuid.UUID, session: SessionDep, account: Reader
) -> list[VppNotificationPublic]:
    """The VPPs told of the event, with the committed reduction of their members."""
    event = services.get_event(session, event_id)
    rows = session.exec(
        select(DrVppNotification).where(DrVppNotification.event_id == event.id)
    ).all()
    return [VppNotificationPublic.model_validate(r, from_attributes=True) for r in rows]


@router.post(
    "/programs/{program_id}/budget",
    response_model=EscrowPosted,
    status_code=201,
    responses=raises(DrProgramNotFound, DrAccessDenied, DrContractMissing, WalletMustSign),
    dependencies=[require_role(Role.OPERATOR)],
)
def fund_program(
    program_id: uuid.UUID,
    data: EscrowCreate,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    account: Trader,
) -> EscrowPosted:
    """Escrow `amount` gUSD into the budget of a program you operate (DemandResponse); its
    events are settled from it. Wallet accounts get the calls to send."""
    tx = payments.fund_program(session, settings, chain, account, program_id, data.amount)
    return EscrowPosted(program_id=program_id, amount=data.amount, tx_hash=tx)


@router.post(
    "/programs/{program_id}/collateral",
    response_model=EscrowPosted,
    status_code=201,
    responses=raises(DrProgramNotFound, DrContractMissing, WalletMustSign),
)
def post_collateral(
    program_id: uuid.UUID,
    data: EscrowCreate,
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    account: Trader,
) -> EscrowPosted:
    """Post collateral in a program you take part in: shortfall penalties are taken from it
    (never more than it holds)."""
    tx = payments.post_collateral(session, settings, chain, account, program_id, data.amount)
    return EscrowPosted(program_id=program_id, amount=data.amount, tx_hash=tx)


@router.post(
    "/withdrawals",
    response_model=Withdrawal,
    responses=raises(NothingToWithdraw, DrContractMissing, WalletMustSign),
)
def withdraw_payouts(
    account: Trader, session: SessionDep, settings: SettingsDep, chain: ChainDep
) -> Withdrawal:
    """Custodial: move my whole DemandResponse credit (incentives, released collateral, a
    closed program's budget) to my address. 409 `nothing-to-withdraw` when it is zero."""
    return payments.withdraw(session, settings, chain, account)


@router.get("/offers", response_model=list[OfferPublic])
def list_offers(
    session: SessionDep, account: Reader, status: DrOfferStatus | None = None
) -> list[OfferPublic]:
    return [offers.offer_view(o) for o in offers.list_offers(session, status)]


@router.post(
    "/offers",
    response_model=OfferPublic,
    status_code=201,
    dependencies=[require_role(Role.AGGREGATOR)],
    responses=raises(
        DrOfferInvalid,
        MeterNotFound,
        MeterAccessDenied,
        ResourceNotFound,
        ResourceAccessDenied,
        ResourceDecommissioned,
    ),
)
def create_offer(data: OfferCreate, session: SessionDep, account: Trader) -> OfferPublic:
    """Offer DR capacity (aggregators, ITU-T Y.2072): a reduction in W on a meter or resource
    you own over a window, at a price per kWh reduced against the baseline."""
    offer = offers.create_offer(session, account, data, now=int(time.time()))
    session.commit()
    session.refresh(offer)
    return offers.offer_view(offer)


@router.post(
    "/offers/{offer_id}/accept",
    response_model=EventPublic,
    status_code=201,
    responses=raises(DrOfferNotFound, DrOfferNotOpen, DrOfferInvalid),
    dependencies=[require_role(Role.OPERATOR)],
)
def accept_offer(offer_id: uuid.UUID, session: SessionDep, account: Trader) -> EventPublic:
    """Buy an open offer (operators): a one-event program with the offer's terms is created
    for you and its event dispatched; settlement follows the baseline performance."""
    _, event = offers.accept_offer(session, account, offer_id, now=int(time.time()))
    dispatch.dispatch_event(session, event)
    session.commit()
    session.refresh(event)
    return services.event_view(session, event)


@router.delete(
    "/offers/{offer_id}",
    response_model=OfferPublic,
    responses=raises(DrOfferNotFound, DrOfferNotOpen, DrAccessDenied),
)
def withdraw_offer(offer_id: uuid.UUID, session: SessionDep, account: Trader) -> OfferPublic:
    """Withdraw your open offer."""
    offer = offers.withdraw_offer(session, account, offer_id)
    session.commit()
    session.refresh(offer)
    return offers.offer_view(offer)

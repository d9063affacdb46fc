"""Settle DR events on chain: each participant's incentive and penalty, posted once to
DemandResponse from the program's escrowed budget (pull payments; penalties from collateral).

Flow of `settle_event` (per event, under the lock `dr:event:<id>`):
  1. once the event has ended `dr_settlement_delay_s` ago and every evaluated participant has a
     verified reading for each interval (or `dr_missing_data_deadline_s` has passed: missing
     intervals deliver nothing), write one `DrSettlement` per account from
     backend/dr/evaluation.py (summed over the account's participations, since the contract
     settles an (event, address) once). Opted-out participants and those without a baseline
     are owed nothing (no incentive, no penalty: the ledger pays and charges only what verified
     readings measure). Written once: later readings do not change a settled event;
  2. under the lock of the SETTLER key (shared with energy settlement): resolve logged `settle`
     transactions left by a dead worker, ask the contract `isSettled` for every pending row
     (a settled one is marked `closed`, never sent), then send `settle` in batches through the
     write-ahead log (backend/settlement/chain.py).
Exactly once: the contract refuses a second result for an (event, participant) with
DemandResponseAlreadySettled; on our side a row is only sent while the contract says it is not
settled, from one sender at a time, and a logged transaction is re-broadcast byte for byte
rather than re-signed, so a worker killed between broadcast and commit pays nobody twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from eth_utils import to_checksum_address
from sqlmodel import Session, col, select
from web3.contract import Contract

from backend.accounts.models import Account
from backend.core.config import Settings
from backend.dr import evaluation, services
from backend.dr.errors import DrAccessDenied
from backend.dr.holiday_calendar import HolidayCalendar
from backend.dr.models import DrEvent, DrProgram, DrSettlement, DrSettlementStatus
from backend.dr.onchain import bytes32_id, program_on_chain
from backend.dr.schemas import EventSettlement, ParticipantSettlement
from backend.settlement.chain import (
    BatchRejected,
    ChainContext,
    selector,
    send_logged,
)
from backend.settlement.locks import SETTLER_KEY, Locks, hold_signing_key
from backend.settlement.models import BatchKind, BatchStatus
from backend.settlement.outcomes import SettledKind
from backend.settlement.sending import SendOutcome, chunked, send_in_turn

log = logging.getLogger("gridledger.dr.settlement")
ALREADY_SETTLED = selector("DemandResponseAlreadySettled(bytes32,address)")
OPEN = (DrSettlementStatus.PENDING, DrSettlementStatus.SUBMITTED)
MAX_ROUNDS = 5


class DrChainMissing(RuntimeError):
    """The deployment has no DemandResponse contract."""


@dataclass
class Owed:
    """One account's result in one event, summed over its participations."""

    address: str
    credited_wh: int = 0
    shortfall_wh: int = 0
    incentive: int = 0
    penalty: int = 0
    data_missing: bool = False


@dataclass
class EventSettlementReport:
    event_id: str
    waiting: bool = False  # the event's data is not complete yet (or it has not ended)
    unfunded: bool = False  # the program is not on chain under its operator's address
    settled: int = 0
    already_settled: int = 0
    failed: int = 0
    batches: list[str] = field(default_factory=list)
    busy: bool = False


def owed_by_account(
    session: Session, program: DrProgram, event: DrEvent, calendar: HolidayCalendar
) -> tuple[dict[uuid.UUID, Owed], bool]:
    """Each account's result, and whether every evaluated interval had a verified reading."""
    owed: dict[uuid.UUID, Owed] = {}
    complete = True
    rows = services.participations(session, event.id)
    accounts = select(Account).where(col(Account.id).in_({e.account_id for _, e in rows}))
    addresses = {a.id: a.address.lower() for a in session.exec(accounts).all()}
    for participation, enrolment in rows:
        result = evaluation.participant_performance(
            session, program, event, participation, enrolment, calendar
        )
        row = owed.setdefault(enrolment.account_id, Owed(addresses[enrolment.account_id]))
        if result.status != "evaluated":
            continue
        missing = any(i.metered_wh is None for i in result.intervals)
        complete = complete and not missing
        row.data_missing = row.data_missing or missing
        row.credited_wh += result.credited_wh
        row.shortfall_wh += result.shortfall_wh
        row.incentive += int(result.incentive)
        row.penalty += int(result.penalty)
    return owed, complete


def prepare(
    session: Session, event: DrEvent, *, now: int, settings: Settings
) -> list[DrSettlement] | None:
    """The event's settlement rows, written now if its data is complete (see module flow);
    None while it is not (or the event was cancelled)."""
    existing = list(
        session.exec(
            select(DrSettlement)
            .where(DrSettlement.event_id == event.id)
            .order_by(col(DrSettlement.id))
        ).all()
    )
    if existing:
        return existing
    if event.cancelled_at is not None or now < event.end + settings.dr_settlement_delay_s:
        return None
    program = services.get_program(session, event.program_id)
    owed, complete = owed_by_account(
        session, program, event, HolidayCalendar.from_settings(settings)
    )
    if not complete and now < event.end + settings.dr_missing_data_deadline_s:
        return None
    rows = [
        DrSettlement(
            event_id=event.id,
            account_id=account_id,
            address=o.address,
            credited_wh=o.credited_wh,
            shortfall_wh=o.shortfall_wh,
            incentive=o.incentive,
            penalty=o.penalty,
            data_missing=o.data_missing,
            status=DrSettlementStatus.PENDING
            if o.incentive or o.penalty
            else DrSettlementStatus.NOTHING_DUE,
        )
        for account_id, o in sorted(owed.items(), key=lambda item: item[1].address)
    ]
    session.add_all(rows)
    session.commit()
    return rows


def contract_of(ctx: ChainContext) -> Contract:
    if ctx.demand_response is None:
        raise DrChainMissing("the deployment has no DemandResponse contract")
    return ctx.demand_response


DR_RESULTS = SettledKind(
    DrSettlement, BatchKind.DR_SETTLE, DrSettlementStatus.SETTLED, DrSettlementStatus.PENDING
)


def unsettled_on_chain(
    session: Session, ctx: ChainContext, event: DrEvent, report: EventSettlementReport
) -> list[DrSettlement]:
    """The event's pending rows the contract has not settled; the others are marked closed."""
    contract = contract_of(ctx)
    pending = session.exec(
        select(DrSettlement)
        .where(DrSettlement.event_id == event.id, DrSettlement.status == DrSettlementStatus.PENDING)
        .order_by(col(DrSettlement.id))
    ).all()
    sendable = []
    for row in pending:
        settled = contract.functions.isSettled(
            bytes32_id(event.id), to_checksum_address(row.address)
        ).call()
        if settled:
            row.status = DrSettlementStatus.CLOSED
            session.add(row)
            report.already_settled += 1
        else:
            sendable.append(row)
    session.commit()
    return sendable


def send_batch(
    session: Session,
    ctx: ChainContext,
    event: DrEvent,
    rows: list[DrSettlement],
    report: EventSettlementReport,
) -> SendOutcome:
    """One `settle` of `rows`: signed, logged (write-ahead), broadcast, resolved."""
    call = contract_of(ctx).functions.settle(
        bytes32_id(event.program_id),
        bytes32_id(event.id),
        [(to_checksum_address(r.address), r.incentive, r.penalty) for r in rows],
    )
    try:
        batch, status = send_logged(
            session,
            ctx,
            kind=BatchKind.DR_SETTLE,
            account=ctx.settler,
            call=call,
            items=rows,
            submitted=DrSettlementStatus.SUBMITTED,
        )
    except BatchRejected as exc:
        if exc.is_error(ALREADY_SETTLED):
            return SendOutcome.RECHECK
        if len(rows) > 1:  # isolate the row the chain refuses: each alone
            return send_batches(session, ctx, event, ([r] for r in rows), report)
        log.error("DR result %s of event %s refused: %s", rows[0].address, event.id, exc.detail)
        rows[0].status, rows[0].failure = DrSettlementStatus.FAILED, exc.detail[:500]
        session.add(rows[0])
        session.commit()
        report.failed += 1
        return SendOutcome.DONE
    if status == BatchStatus.SIGNED:
        return SendOutcome.UNDECIDED
    DR_RESULTS.apply(session, batch, status)
    if status != BatchStatus.MINED:
        return SendOutcome.RECHECK
    report.settled += len(rows)
    report.batches.append(batch.tx_hash)
    return SendOutcome.DONE


def send_batches(
    session: Session,
    ctx: ChainContext,
    event: DrEvent,
    batches: Iterable[list[DrSettlement]],
    report: EventSettlementReport,
) -> SendOutcome:
    return send_in_turn(batches, lambda rows: send_batch(session, ctx, event, rows, report))


def send_pending(
    session: Session,
    ctx: ChainContext,
    event: DrEvent,
    *,
    batch_size: int,
    report: EventSettlementReport,
) -> None:
    """Send the event's pending rows; the caller holds the SETTLER key's lock."""
    program = services.get_program(session, event.program_id)
    operator = session.get(Account, program.operator_id)
    on_chain = program_on_chain(contract_of(ctx), program.id)
    if operator is None or not on_chain.exists or on_chain.utility != operator.address.lower():
        report.unfunded = True
        return
    for _ in range(MAX_ROUNDS):
        if not DR_RESULTS.recover(session, ctx):
            return  # an earlier transaction is still unmined: the next run resolves it
        sendable = unsettled_on_chain(session, ctx, event, report)
        if not sendable:
            return
        outcome = send_batches(session, ctx, event, chunked(sendable, batch_size), report)
        if outcome is not SendOutcome.RECHECK:
            return


def settle_event(
    session: Session,
    ctx: ChainContext,
    locks: Locks,
    *,
    event_id: uuid.UUID,
    now: int,
    settings: Settings,
) -> EventSettlementReport:
    report = EventSettlementReport(str(event_id))
    with locks.hold(f"dr:event:{event_id}", settings.settlement_lock_timeout_s) as acquired:
        if not acquired:
            report.busy = True
            return report
        event = services.get_event(session, event_id)
        rows = prepare(session, event, now=now, settings=settings)
        if rows is None:
            report.waiting = True
            return report
        if not any(r.status in OPEN for r in rows):
            return report
        with hold_signing_key(locks, SETTLER_KEY, settings) as key_held:
            if not key_held:
                report.busy = True
                return report
            send_pending(
                session, ctx, event, batch_size=settings.dr_settlement_batch_size, report=report
            )
        return report


def due_events(session: Session, *, now: int, settings: Settings) -> Sequence[uuid.UUID]:
    """Ended, not cancelled events without settlement rows, or with rows still open."""
    ended = select(DrEvent.id).where(
        col(DrEvent.cancelled_at).is_(None),
        col(DrEvent.end) <= now - settings.dr_settlement_delay_s,
    )
    done = select(DrSettlement.event_id).distinct()
    still_open = select(DrSettlement.event_id).where(col(DrSettlement.status).in_(OPEN))
    return session.exec(
        ended.where(col(DrEvent.id).notin_(done) | col(DrEvent.id).in_(still_open)).order_by(
            col(DrEvent.end)
        )
    ).all()


def settle_due_events(
    session: Session, ctx: ChainContext, locks: Locks, settings: Settings, now: int | None = None
) -> list[EventSettlementReport]:
    if ctx.demand_response is None:  # a deployment from before DemandResponse: redeploy
        log.warning("no DemandResponse in the deployment: DR events are not settled on chain")
        return []
    now = ctx.now() if now is None else now
    return [
        settle_event(session, ctx, locks, event_id=event_id, now=now, settings=settings)
        for event_id in due_events(session, now=now, settings=settings)
    ]


def event_settlement(session: Session, account: Account, event_id: uuid.UUID) -> EventSettlement:
    """The event's results as posted on chain: every participant for the program's operator,
    one's own otherwise (like the performance view)."""
    event = services.get_event(session, event_id)
    program = services.get_program(session, event.program_id)
    rows = list(
        session.exec(
            select(DrSettlement)
            .where(DrSettlement.event_id == event.id)
            .order_by(col(DrSettlement.id))
        ).all()
    )
    if program.operator_id != account.id:
        taking_part = any(
            e.account_id == account.id for _, e in services.participations(session, event.id)
        )
        if not taking_part:
            raise DrAccessDenied("only the operator and the participants see an event's results")
        rows = [r for r in rows if r.account_id == account.id]
    if not rows:
        state = "waiting"
    elif any(r.status in OPEN for r in rows):
        state = "in_progress"
    else:
        state = "settled"
    return EventSettlement(
        event_id=event.id,
        state=state,
        participants=[
            ParticipantSettlement.model_validate(r.model_dump() | {"tx_hash": r.settled_tx})
            for r in rows
        ],
    )

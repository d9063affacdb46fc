"""Close settlement periods: reconcile trades against metered export, settle on chain.

Flow of `close_due_periods(now)` (the beat task), per period end E (a 15-minute boundary):
  1. under the lock `settle:period:E` (skip if another worker holds it);
  2. reconcile every open ENERGY trade of the mirror ending at E (allocation.py); a trade
     whose seller meter has missing slots waits until E + missing-data deadline, then is
     reconciled with the missing slots as zero and `data_missing` set;
  3. under the lock of the SETTLER key: resolve logged batches left by a dead worker, ask
     the contract `tradeStatus` of every pending trade (a closed one is marked, never sent),
     then send `settleBatch` in batches through the write-ahead log (chain.py).
Exactly once: a trade is only sent while the contract says Open, from one sender at a time,
and a logged transaction is re-broadcast byte for byte rather than re-signed. A revert
(EnergyMarketTradeAlreadyClosed) only sends the batch's trades back through step 3.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum, auto
from itertools import islice
from typing import Any, Protocol, TypeVar, cast

from eth_utils import to_checksum_address
from sqlalchemy import func
from sqlmodel import Session, col, select
from web3.providers import JSONBaseProvider
from web3.types import RPCEndpoint

from backend.core.config import Settings
from backend.meters.models import MeterReading
from backend.settlement.allocation import Allocation, TradeTerms, allocate, settlement_amounts
from backend.settlement.chain import (
    TRADE_ALREADY_CLOSED,
    TRADE_OPEN,
    TRADE_STATUS,
    BatchRejected,
    ChainContext,
    resolved_batches,
    send_logged,
)
from backend.settlement.flags import flag_oversold
from backend.settlement.locks import Locks
from backend.settlement.models import (
    BatchKind,
    BatchStatus,
    Reconciliation,
    ReconciliationStatus,
    SettlementBatch,
    SettlementCorrection,
)
from backend.vpp.delivery import vpp_exports, vpp_of_meter
from indexer.models import Trade, TradeStatus

log = logging.getLogger("gridledger.settlement")
T = TypeVar("T")


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in consecutive lists of `size` (the last one shorter)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


@dataclass
class PeriodReport:
    period_end: int
    reconciled: int = 0
    waiting: int = 0  # trades whose meter data is still missing, before the deadline
    settled: int = 0
    already_closed: int = 0
    batches: list[str] = field(default_factory=list)
    busy: bool = False


def terms(trade: Trade) -> TradeTerms:
    return TradeTerms(
        trade.trade_id,
        trade.quantity_wh,
        trade.price,
        delivery(trade.delivery_start),
        delivery(trade.delivery_end),
        trade.tolerance_bps or 0,
        trade.penalty_bps or 0,
    )


def delivery(value: T | None) -> T:
    """A field every ENERGY trade has (delivery period, meters); only REC swaps leave it empty."""
    if value is None:
        raise ValueError("an ENERGY trade without its delivery period or meters")
    return value


def trade_tuple(trade: Trade) -> tuple[Any, ...]:
    """The Trade struct as the contract hashes it."""
    return (
        to_checksum_address(trade.seller),
        to_checksum_address(trade.buyer),
        bytes.fromhex(delivery(trade.seller_meter)[2:]),
        bytes.fromhex(delivery(trade.buyer_meter)[2:]),
        trade.quantity_wh,
        trade.price,
        trade.delivery_start,
        trade.delivery_end,
        trade.tolerance_bps,
        trade.penalty_bps,
        delivery(trade.reclaim_grace_period),
    )


def data_deadline(settings: Settings, grace_s: int) -> int:
    """Seconds after a period's end to wait for meter data: the configured deadline, but always
    `settlement_reclaim_margin_s` before a buyer may reclaim under grace period `grace_s`."""
    return max(
        0,
        min(
            settings.settlement_missing_data_deadline_s,
            grace_s - settings.settlement_reclaim_margin_s,
        ),
    )


def missing_data_deadline(ctx: ChainContext, settings: Settings) -> int:
    """`data_deadline` under the grace period the contract records in trades made now."""
    return data_deadline(settings, ctx.market.functions.reclaimGracePeriod().call())


def due_period_ends(session: Session, now: int, settings: Settings) -> list[int]:
    rows = session.exec(
        select(Trade.delivery_end)
        .where(
            Trade.product == "energy",
            Trade.status == TradeStatus.OPEN,
            col(Trade.delivery_end) <= now - settings.settlement_gate_delay_s,
        )
        .distinct()
        .order_by(col(Trade.delivery_end))
    ).all()
    return [delivery(end) for end in rows]


def exports(
    session: Session, meter_id: str, start: int, end: int
) -> tuple[dict[int, int | None], set[int]]:
    """The meter's verified export per slot, and the slots that have only unverified export
    (owner-posted, unsigned): those settle as missing data. A VPP's trading meter reads the
    sum of its members' meters (backend/vpp/delivery.py)."""
    vpp = vpp_of_meter(session, meter_id)
    if vpp is not None:
        return vpp_exports(session, vpp, start, end)
    rows = session.exec(
        select(MeterReading.interval_start, MeterReading.export_wh, MeterReading.verified).where(
            func.lower(MeterReading.meter_id) == meter_id.lower(),
            MeterReading.interval_start >= start,
            MeterReading.interval_start < end,
        )
    ).all()
    verified = {slot: wh for slot, wh, ok in rows if ok}
    unverified = {slot for slot, wh, ok in rows if not ok and wh is not None}
    return verified, unverified


@dataclass(frozen=True)
class MeterAllocations:
    allocations: dict[int, Allocation]
    terms: dict[int, TradeTerms]
    unverified: set[int]  # slots with only unverified export

    def unverified_slots(self, trade_id: int) -> int:
        return sum(1 for slot in self.terms[trade_id].slots() if slot in self.unverified)


def meter_allocations(session: Session, meter: str, start: int, end: int) -> MeterAllocations:
    """Allocations of every trade of seller meter `meter` touching [start, end)."""
    trades = session.exec(
        select(Trade).where(
            Trade.product == "energy",
            func.lower(Trade.seller_meter) == meter.lower(),
            col(Trade.delivery_start) < end,
            col(Trade.delivery_end) > start,
        )
    ).all()
    all_terms = [terms(t) for t in trades]
    lo = min(t.start for t in all_terms)
    hi = max(t.end for t in all_terms)
    verified, unverified = exports(session, meter, lo, hi)
    return MeterAllocations(
        allocate(all_terms, verified), {t.trade_id: t for t in all_terms}, unverified
    )


def reconcile_period(
    session: Session, period_end: int, *, now: int, settings: Settings
) -> PeriodReport:
    """Create or refresh the reconciliation records of the open trades ending at `period_end`.
    A trade with missing meter data waits until its own `data_deadline` (under the grace period
    recorded in the trade, which the admin cannot change afterwards)."""
    report = PeriodReport(period_end)
    trades = session.exec(
        select(Trade).where(
            Trade.product == "energy",
            Trade.status == TradeStatus.OPEN,
            Trade.delivery_end == period_end,
        )
    ).all()
    by_meter: dict[str, list[Trade]] = {}
    for trade in trades:
        by_meter.setdefault(delivery(trade.seller_meter).lower(), []).append(trade)
    existing = {
        r.trade_id: r
        for r in session.exec(
            select(Reconciliation).where(
                col(Reconciliation.trade_id).in_([t.trade_id for t in trades])
            )
        ).all()
    }
    for meter, meter_trades in by_meter.items():
        start = min(delivery(t.delivery_start) for t in meter_trades)
        meter_view = meter_allocations(session, meter, start, period_end)
        allocations, all_terms = meter_view.allocations, meter_view.terms
        flag_oversold(session, meter, list(all_terms.values()))
        for trade in meter_trades:
            record = existing.get(trade.trade_id)
            if record is not None and record.status != ReconciliationStatus.PENDING:
                continue
            allocation = allocations[trade.trade_id]
            deadline_s = data_deadline(settings, delivery(trade.reclaim_grace_period))
            if allocation.data_missing and now < period_end + deadline_s:
                report.waiting += 1
                continue
            amounts = settlement_amounts(all_terms[trade.trade_id], allocation.allocated_wh)
            values: dict[str, Any] = {
                "period_start": trade.delivery_start,
                "period_end": trade.delivery_end,
                "seller": trade.seller,
                "seller_meter": meter,
                "contracted_wh": trade.quantity_wh,
                "metered_wh": allocation.metered_wh,
                "allocated_wh": allocation.allocated_wh,
                "delivered_wh": amounts.delivered_wh,
                "shortfall_wh": amounts.shortfall_wh,
                "expected_payout": amounts.payout,
                "expected_penalty": amounts.penalty,
                "expected_refund": amounts.refund,
                "data_missing": allocation.data_missing,
                "unverified_slots": meter_view.unverified_slots(trade.trade_id),
                "computed_at": datetime.now(UTC),
            }
            if record is None:
                record = Reconciliation(trade_id=trade.trade_id, **values)
            else:
                for key, value in values.items():
                    setattr(record, key, value)
            session.add(record)
            report.reconciled += 1
    session.commit()
    return report


class SettledItem(Protocol):
    """A row a settling transaction carries (a reconciliation, a DR result)."""

    status: str
    batch_id: int | None
    settled_tx: str | None
    settled_at: datetime | None


@dataclass(frozen=True)
class SettledKind:
    """Rows (`model`) that transactions of `kind` settle: marked `settled` (with the hash) when
    their transaction is mined, back to `pending` (out of the batch, re-checked against the
    contract) when it reverted or was dropped."""

    model: Any  # a table model with SettledItem's fields
    kind: BatchKind
    settled: str
    pending: str

    def apply(self, session: Session, batch: SettlementBatch, status: BatchStatus) -> None:
        items: Sequence[SettledItem] = session.exec(
            select(self.model).where(self.model.batch_id == batch.id)
        ).all()
        for item in items:
            if status == BatchStatus.MINED:
                item.status, item.settled_tx = self.settled, batch.tx_hash
                item.settled_at = datetime.now(UTC)
            else:
                item.status, item.batch_id = self.pending, None
            session.add(item)
        session.commit()

    def recover(self, session: Session, ctx: ChainContext) -> None:
        """Finish what a dead worker left: every logged transaction gets its outcome."""
        for batch, status in resolved_batches(session, ctx, self.kind):
            self.apply(session, batch, status)


RECONCILIATIONS = SettledKind(
    Reconciliation, BatchKind.SETTLE, ReconciliationStatus.SETTLED, ReconciliationStatus.PENDING
)
apply_batch_outcome = RECONCILIATIONS.apply
recover_batches = RECONCILIATIONS.recover


def trade_statuses(ctx: ChainContext, trade_ids: list[int], chunk: int = 1_000) -> dict[int, int]:
    """`tradeStatus` of each trade, as raw `eth_call`s in JSON-RPC batches (the contract's
    own answer, not the mirror's; encoded by hand because web3's per-call encoding dominates)."""
    statuses: dict[int, int] = {}
    address = ctx.market.address
    provider = cast(JSONBaseProvider, ctx.w3.provider)  # an HTTPProvider (ChainContext)
    for ids in chunked(trade_ids, chunk):
        calls: list[tuple[RPCEndpoint, Any]] = [
            (
                RPCEndpoint("eth_call"),
                [
                    {"to": address, "data": TRADE_STATUS + trade_id.to_bytes(32, "big").hex()},
                    "latest",
                ],
            )
            for trade_id in ids
        ]
        replies = provider.make_batch_request(calls)
        if not isinstance(replies, list):
            raise BatchRejected(f"tradeStatus batch failed: {replies}")
        for trade_id, reply in zip(ids, replies, strict=False):
            if "result" not in reply:
                raise BatchRejected(f"tradeStatus({trade_id}) failed: {reply.get('error')}")
            statuses[trade_id] = int(reply["result"], 16)
    return statuses


class SendOutcome(Enum):
    """What sending settleBatch transactions came to."""

    DONE = auto()  # every batch mined, or its trades refused for good (failed)
    RECHECK = auto()  # a trade closed meanwhile, or a batch reverted or was dropped: check again
    UNDECIDED = auto()  # a sent batch is not mined yet: the next run resolves it


MAX_ROUNDS = 5  # rounds of (check tradeStatus, send); a RECHECK starts the next round


def send_pending(
    session: Session,
    ctx: ChainContext,
    *,
    trade_ids: list[int],
    batch_size: int,
    report: PeriodReport,
) -> None:
    """Send the pending reconciliations among `trade_ids`; caller holds the SETTLER lock.

    Each round first resolves logged batches left undecided, then sends what the contract
    still has Open in batches of `batch_size`; a batch that comes back (a trade closed by
    someone else, a revert, a dropped transaction) is re-checked in the next round."""
    for _ in range(MAX_ROUNDS):
        recover_batches(session, ctx)
        sendable = open_on_chain(session, ctx, trade_ids, report)
        if not sendable:
            return
        mirror = {
            t.trade_id: t
            for t in session.exec(
                select(Trade).where(col(Trade.trade_id).in_([r.trade_id for r in sendable]))
            ).all()
        }
        outcome = send_batches(session, ctx, chunked(sendable, batch_size), mirror, report)
        if outcome is not SendOutcome.RECHECK:
            return


def open_on_chain(
    session: Session, ctx: ChainContext, trade_ids: list[int], report: PeriodReport
) -> list[Reconciliation]:
    """The pending reconciliations among `trade_ids` whose trade the contract still has Open;
    the others are marked closed (settled or reclaimed by someone else: never sent again)."""
    pending = session.exec(
        select(Reconciliation)
        .where(
            col(Reconciliation.trade_id).in_(trade_ids),
            Reconciliation.status == ReconciliationStatus.PENDING,
        )
        .order_by(col(Reconciliation.trade_id))
    ).all()
    statuses = trade_statuses(ctx, [r.trade_id for r in pending])
    sendable = []
    for record in pending:
        if statuses[record.trade_id] == TRADE_OPEN:
            sendable.append(record)
        else:
            record.status = ReconciliationStatus.CLOSED
            session.add(record)
            report.already_closed += 1
    session.commit()
    return sendable


def send_batches(
    session: Session,
    ctx: ChainContext,
    batches: Iterable[list[Reconciliation]],
    mirror: dict[int, Trade],
    report: PeriodReport,
) -> SendOutcome:
    """Send `batches` one after the other; stop at the first that stays undecided."""
    return send_in_turn(batches, lambda records: send_batch(session, ctx, records, mirror, report))


def send_in_turn(batches: Iterable[T], send: Callable[[T], SendOutcome]) -> SendOutcome:
    """`send` each batch in turn; stop at the first that stays undecided (UNDECIDED), else
    RECHECK if any batch asks for it, else DONE."""
    outcomes = []
    for batch in batches:
        outcome = send(batch)
        if outcome is SendOutcome.UNDECIDED:
            return outcome
        outcomes.append(outcome)
    return SendOutcome.RECHECK if SendOutcome.RECHECK in outcomes else SendOutcome.DONE


def send_batch(
    session: Session,
    ctx: ChainContext,
    records: list[Reconciliation],
    mirror: dict[int, Trade],
    report: PeriodReport,
) -> SendOutcome:
    """One settleBatch of `records`: signed, logged (write-ahead), broadcast, resolved."""
    call = ctx.market.functions.settleBatch(
        [trade_tuple(mirror[r.trade_id]) for r in records],
        [r.trade_id for r in records],
        [r.delivered_wh for r in records],
    )
    try:
        batch, status = send_logged(
            session,
            ctx,
            kind=BatchKind.SETTLE,
            account=ctx.settler,
            call=call,
            items=records,
            submitted=ReconciliationStatus.SUBMITTED,
        )
    except BatchRejected as exc:
        return refused(session, ctx, records, mirror, report, exc)
    if status == BatchStatus.SIGNED:
        return SendOutcome.UNDECIDED  # not mined within the timeout
    apply_batch_outcome(session, batch, status)
    if status != BatchStatus.MINED:
        return SendOutcome.RECHECK
    report.settled += len(records)
    report.batches.append(batch.tx_hash)
    return SendOutcome.DONE


def refused(
    session: Session,
    ctx: ChainContext,
    records: list[Reconciliation],
    mirror: dict[int, Trade],
    report: PeriodReport,
    exc: BatchRejected,
) -> SendOutcome:
    """The chain refuses the batch of `records` before it is sent."""
    if exc.is_error(TRADE_ALREADY_CLOSED):
        return SendOutcome.RECHECK  # someone closed one of them: re-check statuses
    if len(records) > 1:  # isolate the trade the chain refuses: each alone
        return send_batches(session, ctx, ([record] for record in records), mirror, report)
    record = records[0]
    log.error("trade %s cannot be settled: %s", record.trade_id, exc.detail)
    record.status, record.failure = ReconciliationStatus.FAILED, exc.detail[:500]
    session.add(record)
    session.commit()
    return SendOutcome.DONE


def close_period(
    session: Session,
    ctx: ChainContext,
    locks: Locks,
    *,
    period_end: int,
    now: int,
    settings: Settings,
) -> PeriodReport:
    with locks.hold(f"settle:period:{period_end}", settings.settlement_lock_timeout_s) as acquired:
        if not acquired:
            return PeriodReport(period_end, busy=True)
        report = reconcile_period(session, period_end, now=now, settings=settings)
        trade_ids = list(
            session.exec(
                select(Reconciliation.trade_id).where(
                    Reconciliation.period_end == period_end,
                    col(Reconciliation.status).in_(
                        (ReconciliationStatus.PENDING, ReconciliationStatus.SUBMITTED)
                    ),
                )
            ).all()
        )
        if trade_ids:
            with locks.hold(
                "settler-key",
                settings.settlement_lock_timeout_s,
                wait_s=settings.settlement_lock_timeout_s,
            ) as key_held:
                if not key_held:
                    report.busy = True
                    return report
                send_pending(
                    session,
                    ctx,
                    trade_ids=trade_ids,
                    batch_size=settings.settlement_batch_size,
                    report=report,
                )
        return report


def close_due_periods(
    session: Session, ctx: ChainContext, locks: Locks, settings: Settings, now: int | None = None
) -> list[PeriodReport]:
    now = ctx.now() if now is None else now
    return [
        close_period(session, ctx, locks, period_end=end, now=now, settings=settings)
        for end in due_period_ends(session, now, settings)
    ]


def record_corrections(session: Session, since: int) -> list[SettlementCorrection]:
    """Late or corrected readings for settled trades: a correction record each, no re-settlement."""
    created: list[SettlementCorrection] = []
    settled = session.exec(
        select(Reconciliation).where(
            Reconciliation.status == ReconciliationStatus.SETTLED,
            Reconciliation.period_end >= since,
        )
    ).all()
    for record in settled:
        changed = session.exec(
            select(func.count())
            .select_from(MeterReading)
            .where(
                MeterReading.meter_id == record.seller_meter,
                MeterReading.interval_start >= record.period_start,
                MeterReading.interval_start < record.period_end,
                MeterReading.received_at > record.computed_at,
            )
        ).one()
        if not changed:
            continue
        meter_view = meter_allocations(
            session, record.seller_meter, record.period_start, record.period_end
        )
        all_terms = meter_view.terms
        allocation = meter_view.allocations[record.trade_id]
        if allocation.metered_wh == record.metered_wh:
            continue
        exists = session.exec(
            select(SettlementCorrection).where(
                SettlementCorrection.trade_id == record.trade_id,
                SettlementCorrection.corrected_metered_wh == allocation.metered_wh,
            )
        ).first()
        if exists:
            continue
        amounts = settlement_amounts(all_terms[record.trade_id], allocation.allocated_wh)
        correction = SettlementCorrection(
            trade_id=record.trade_id,
            settled_metered_wh=record.metered_wh,
            settled_delivered_wh=record.delivered_wh,
            corrected_metered_wh=allocation.metered_wh,
            corrected_delivered_wh=amounts.delivered_wh,
            # the seller's net (gross - penalty), as corrected minus as settled
            payout_delta=amounts.seller_net - (record.expected_payout - record.expected_penalty),
        )
        session.add(correction)
        created.append(correction)
    session.commit()
    return created

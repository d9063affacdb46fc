"""Close settlement periods: reconcile trades against metered export, settle on chain.

Flow of `close_due_periods(now)` (the beat task), per period end E (a 15-minute boundary):
  1. under the lock `settle:period:E` (skip if another worker holds it);
  2. reconcile every open ENERGY trade of the mirror ending at E (allocation.py); a trade
     whose seller meter has missing slots waits until E + missing-data deadline, then is
     reconciled with the missing slots as zero and `data_missing` set;
  3. under the lock of the SETTLER key: resolve logged batches left by a dead worker, ask
     the contract `tradeStatus` of every pending trade (a closed one is marked, never sent),
     then send `settleBatch` in batches, several in flight, through the write-ahead log
     (sending.py, chain.py).
Exactly once: a trade is only sent while the contract says Open, from one sender at a time,
and a logged transaction is re-broadcast byte for byte rather than re-signed. A revert
(EnergyMarketTradeAlreadyClosed) only sends the batch's trades back through step 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from eth_utils import to_checksum_address
from sqlalchemy import func, insert, update
from sqlmodel import Session, col, select

from backend.core.config import Settings
from backend.meters.models import MeterReading
from backend.meters.runs import day_bounds
from backend.settlement.allocation import Allocation, TradeTerms, allocate, settlement_amounts
from backend.settlement.chain import ChainContext
from backend.settlement.flags import flag_oversold
from backend.settlement.locks import SETTLER_KEY, Locks, hold_signing_key
from backend.settlement.models import Reconciliation, ReconciliationStatus, SettlementCorrection
from backend.settlement.sending import PeriodReport, send_pending
from backend.vpp.delivery import vpp_exports, vpp_of_meter
from indexer.models import Trade, TradeStatus

T = TypeVar("T")


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
            *day_bounds(session, start, end),
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
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
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
            (inserts if record is None else updates).append({"trade_id": trade.trade_id, **values})
            report.reconciled += 1
    # set-based: one multi-row INSERT of the new records, one UPDATE by key of the refreshed
    if inserts:
        session.execute(insert(Reconciliation), inserts)
    if updates:
        session.execute(update(Reconciliation), updates)
    session.commit()
    return report


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
            with hold_signing_key(locks, SETTLER_KEY, settings) as key_held:
                if not key_held:
                    report.busy = True
                    return report
                send_pending(
                    session,
                    ctx,
                    trade_ids=trade_ids,
                    batch_size=settings.settlement_batch_size,
                    pipeline_depth=settings.settlement_pipeline_depth,
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
                *day_bounds(session, record.period_start, record.period_end),
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

"""Send reconciled trades to `EnergyMarket.settleBatch`: pipelined, write-ahead, exactly once.

Under the SETTLER key's lock (services.close_period), each round:
  1. resolves the logged batches a dead worker (or a timed-out run) left undecided;
  2. asks the contract `tradeStatus` of every pending trade (a closed one is marked, never sent);
  3. sends the rest in windows of up to `pipeline_depth` batches: every batch of the window is
     signed with an explicit nonce (consecutive), all are logged with their trades marked
     submitted in ONE commit (write-ahead), then all are broadcast, and only then are their
     receipts awaited, in nonce order.
A batch that reverts (a trade closed meanwhile) takes only its own trades back to pending, to
be re-checked in the next round; the other batches of its window are independent (disjoint
trades) and mine as they are. A batch the chain would refuse at signing ends its window there
(nonces stay consecutive) and is split, so the trade it refuses is isolated. A batch left
undecided (not mined within the timeout) stops the run: the next run resolves it, and the ones
logged after it, from the log, re-broadcasting the same bytes, never re-signing.
The reconciliation rows change by set-based UPDATEs keyed on trade id or batch id (outcomes.py).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum, auto
from itertools import islice
from typing import Any, TypeVar, cast

from sqlalchemy import update
from sqlmodel import Session, col, select
from web3.providers import JSONBaseProvider
from web3.types import RPCEndpoint

from backend.settlement.calldata import SettleItem, settle_batch_calldata, settle_items
from backend.settlement.chain import (
    TRADE_ALREADY_CLOSED,
    TRADE_OPEN,
    TRADE_STATUS,
    BatchRejected,
    ChainContext,
    broadcast,
    log_batch,
    resolve_batch,
    sign_data,
)
from backend.settlement.models import (
    BatchKind,
    BatchStatus,
    Reconciliation,
    ReconciliationStatus,
    SettlementBatch,
)
from backend.settlement.outcomes import SettledKind

log = logging.getLogger("gridledger.settlement")
T = TypeVar("T")
ID_CHUNK = 1_000  # ids per IN (...) list: SQLite's bound-parameter limit


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


class SendOutcome(Enum):
    """What sending settleBatch transactions came to."""

    DONE = auto()  # every batch mined, or its trades refused for good (failed)
    RECHECK = auto()  # a trade closed meanwhile, or a batch reverted or was dropped: check again
    UNDECIDED = auto()  # a sent batch is not mined yet: the next run resolves it


MAX_ROUNDS = 5  # rounds of (check tradeStatus, send); a RECHECK starts the next round


def set_status(session: Session, trade_ids: Sequence[int], **values: Any) -> None:
    """One UPDATE of the reconciliations of `trade_ids` (per chunk of ids); not committed."""
    for ids in chunked(trade_ids, ID_CHUNK):
        session.execute(
            update(Reconciliation).where(col(Reconciliation.trade_id).in_(ids)).values(**values)
        )


RECONCILIATIONS = SettledKind(
    Reconciliation, BatchKind.SETTLE, ReconciliationStatus.SETTLED, ReconciliationStatus.PENDING
)


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


def send_pending(
    session: Session,
    ctx: ChainContext,
    *,
    trade_ids: list[int],
    batch_size: int,
    pipeline_depth: int,
    report: PeriodReport,
) -> None:
    """Send the pending reconciliations among `trade_ids`; caller holds the SETTLER lock.

    Each round first resolves logged batches left undecided, then sends what the contract
    still has Open in batches of `batch_size`, `pipeline_depth` in flight; a batch that comes
    back (a trade closed by someone else, a revert, a dropped transaction) is re-checked in
    the next round."""
    for _ in range(MAX_ROUNDS):
        if not RECONCILIATIONS.recover(session, ctx):
            return  # an earlier transaction is still unmined: the next run resolves it
        sendable = open_on_chain(session, ctx, trade_ids, report)
        if not sendable:
            return
        items = settle_items(session, sendable)
        outcome = send_batches(
            session, ctx, chunked(items, batch_size), report, pipeline_depth=pipeline_depth
        )
        if outcome is not SendOutcome.RECHECK:
            return


def open_on_chain(
    session: Session, ctx: ChainContext, trade_ids: list[int], report: PeriodReport
) -> list[int]:
    """The pending trades among `trade_ids` the contract still has Open; the others are
    marked closed (settled or reclaimed by someone else: never sent again)."""
    pending: list[int] = []
    for ids in chunked(trade_ids, ID_CHUNK):
        pending.extend(
            session.exec(
                select(Reconciliation.trade_id).where(
                    col(Reconciliation.trade_id).in_(ids),
                    Reconciliation.status == ReconciliationStatus.PENDING,
                )
            ).all()
        )
    pending.sort()
    statuses = trade_statuses(ctx, pending)
    closed = [trade_id for trade_id in pending if statuses[trade_id] != TRADE_OPEN]
    set_status(session, closed, status=ReconciliationStatus.CLOSED)
    session.commit()
    report.already_closed += len(closed)
    return [trade_id for trade_id in pending if statuses[trade_id] == TRADE_OPEN]


def send_batches(
    session: Session,
    ctx: ChainContext,
    batches: Iterable[list[SettleItem]],
    report: PeriodReport,
    *,
    pipeline_depth: int,
) -> SendOutcome:
    """Send `batches` in windows of `pipeline_depth`; stop at the first that stays undecided."""
    queue = deque(batches)
    outcomes = []
    while queue:
        window = [queue.popleft() for _ in range(min(pipeline_depth, len(queue)))]
        outcome, unsent = send_window(session, ctx, window, report)
        if outcome is SendOutcome.UNDECIDED:
            return outcome
        outcomes.append(outcome)
        queue.extendleft(reversed(unsent))
    return SendOutcome.RECHECK if SendOutcome.RECHECK in outcomes else SendOutcome.DONE


@dataclass
class Signed:
    items: list[SettleItem]
    nonce: int
    tx_hash: str
    raw: bytes


def sign_window(
    ctx: ChainContext, window: list[list[SettleItem]]
) -> tuple[list[Signed], tuple[list[SettleItem], BatchRejected] | None, list[list[SettleItem]]]:
    """Sign the batches of `window` with consecutive nonces, up to the first the chain would
    refuse: (signed, (refused batch, its error) or None, the batches after the refused one)."""
    signed: list[Signed] = []
    nonce = ctx.w3.eth.get_transaction_count(ctx.settler.address, "pending")
    for index, items in enumerate(window):
        try:
            signed.append(
                Signed(
                    items,
                    *sign_data(
                        ctx,
                        ctx.settler,
                        to=ctx.market.address,
                        data=settle_batch_calldata(items),
                        abi=ctx.market.abi,
                        nonce=nonce + len(signed),
                    ),
                )
            )
        except BatchRejected as exc:
            return signed, (items, exc), window[index + 1 :]
    return signed, None, []


def send_window(
    session: Session, ctx: ChainContext, window: list[list[SettleItem]], report: PeriodReport
) -> tuple[SendOutcome, list[list[SettleItem]]]:
    """Sign, log (one commit), broadcast, then resolve the batches of `window`; the outcome
    and the batches left unsent (after one the chain refused), to go on with."""
    signed, rejected, unsent = sign_window(ctx, window)
    logged: list[tuple[SettlementBatch, Signed]] = []
    for tx in signed:
        batch = log_batch(
            session,
            kind=BatchKind.SETTLE,
            sender=ctx.settler.address,
            nonce=tx.nonce,
            tx_hash=tx.tx_hash,
            raw=tx.raw,
            items=len(tx.items),
        )
        set_status(
            session,
            [item.trade_id for item in tx.items],
            status=ReconciliationStatus.SUBMITTED,
            batch_id=batch.id,
        )
        logged.append((batch, tx))
    session.commit()  # write-ahead: logged before it exists anywhere else
    for batch, _ in logged:
        broadcast(ctx, batch)
    outcomes = []
    for batch, tx in logged:  # nonce order: a later one cannot be mined before an earlier one
        status = resolve_batch(session, ctx, batch)
        if status == BatchStatus.SIGNED:  # not mined within the timeout
            session.commit()
            return SendOutcome.UNDECIDED, []
        RECONCILIATIONS.apply(session, batch, status)
        if status == BatchStatus.MINED:
            report.settled += len(tx.items)
            report.batches.append(batch.tx_hash)
        else:
            outcomes.append(SendOutcome.RECHECK)
    if rejected is not None:
        outcomes.append(refused(session, ctx, *rejected, report))
    outcome = SendOutcome.RECHECK if SendOutcome.RECHECK in outcomes else SendOutcome.DONE
    if SendOutcome.UNDECIDED in outcomes:
        outcome = SendOutcome.UNDECIDED
    return outcome, unsent


def refused(
    session: Session,
    ctx: ChainContext,
    items: list[SettleItem],
    exc: BatchRejected,
    report: PeriodReport,
) -> SendOutcome:
    """The chain refuses the batch of `items` before it is sent."""
    if exc.is_error(TRADE_ALREADY_CLOSED):
        return SendOutcome.RECHECK  # someone closed one of them: re-check statuses
    if len(items) > 1:  # isolate the trade the chain refuses: each alone
        return send_batches(session, ctx, ([item] for item in items), report, pipeline_depth=1)
    (item,) = items
    log.error("trade %s cannot be settled: %s", item.trade_id, exc.detail)
    set_status(
        session, [item.trade_id], status=ReconciliationStatus.FAILED, failure=exc.detail[:500]
    )
    session.commit()
    return SendOutcome.DONE

"""Group commit of wallet-signed orders: one writer per process (and event loop) stores the
orders requests hand it, a batch per transaction, and answers each request after the commit.

Why: a transaction per order pays a commit (a WAL flush) and a pooled connection held through
every check per order; a batch pays one. While a batch commits the next one gathers in the
queue, so under load batches grow by themselves and an idle writer adds no delay.

The checks run inside the batch's transaction, in queue order, after the advisory lock of every
maker in the batch (`intake.lock_maker`'s lock: the sync intake and other API workers take the
same one). What a maker's open orders reserve is read once under that lock and grows with each
order accepted before it in the batch, so two orders of one maker never both pass against the
same funds (backend/market/batch_funds.py: energy offers, bids and REC offers).

An order passes on the indexer's mirror (nonce, funds, settlement terms) or is handed back
(`ASK_CHAIN`): a refusal on mirrored values is never final, the caller asks the chain through
the sync intake. A duplicate, an inactive account and a meter that is not the maker's are
final refusals (the future's exception).

Batches run on a thread of their own with a sync connection (`OrderWriter`), two round trips
each: BEGIN with the locks and every read the checks need, then the inserts with the COMMIT.
After the commit the requests are answered and the batch's `order.placed` messages go to the
Redis stream from the publisher's thread (backend/market/order_publisher.py) while the next
batch is stored: the relay's query after every batch took a fifth of the API's CPU under load,
and publishing on the writer's own thread a third of its cycle. What fails to go out stays for
the next relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import uuid
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Json

from backend.core.async_db import loop_local
from backend.core.config import Settings
from backend.core.errors import GridLedgerError, Unauthenticated
from backend.core.utc import utc_now
from backend.market import intake, order_events
from backend.market import orders as eip712
from backend.market.batch_funds import BatchFunds, Ledger, claim_of, reserves
from backend.market.errors import (
    DuplicateOrder,
    GateClosed,
    InsufficientCollateral,
    InsufficientFunds,
    InvalidOrder,
    OrderExpired,
)
from backend.market.meter_ownership import meter_owned, not_owned
from backend.market.models import OrderStatus
from backend.market.order_publisher import OrderPublisher

log = logging.getLogger("gridledger.market")

ASK_CHAIN = None  # a future's result when the mirror cannot accept the order: ask the chain

# Every maker's lock, in key order (two batches never wait on each other in a cycle).
_LOCK = """
SELECT pg_advisory_xact_lock(%(class)s, k)
FROM (SELECT DISTINCT hashtext(m) AS k FROM unnest(%(makers)s::text[]) AS m ORDER BY k) AS keys
"""
IDLE_S = 5.0  # a writer thread idle this long ends (and closes its connection)
# pg_stat_activity's name of the writer's connection (the publisher's: order_publisher's):
# its backend's CPU per order is the database's share (bench/api_order_submit.py)
APPLICATION_NAME = "gridledger-order-writer"


# The batch's accounts still active: a fast path (backend/api/fast_orders.py) does not read the
# account row per request, so a disabled account is refused here, in the storing transaction.
_ACTIVE = "SELECT id FROM accounts WHERE id = ANY(%(ids)s::uuid[]) AND active"
_STORED = "SELECT order_hash FROM signed_orders WHERE order_hash = ANY(%(ids)s::text[])"
_METERS = "SELECT meter_id, owner_id FROM meters WHERE meter_id = ANY(%(ids)s::text[])"
# The batch's open orders in one statement, a column per array (in batch order: seq grows with
# it); what every new order has in common is written once.
_ORDER_ARRAYS = [
    ("order_hash", "text"),
    ("account_id", "uuid"),
    ("maker", "text"),
    ("side", "int"),
    ("product", "int"),
    ("asset_id", "bigint"),
    ("meter_id", "text"),
    ("quantity_wh", "bigint"),
    ("price", "bigint"),
    ("delivery_start", "bigint"),
    ("delivery_end", "bigint"),
    ("expiry", "bigint"),
    ("nonce", "bigint"),
    ("salt", "text"),
    ("signature", "text"),
]
_INSERT_ORDERS = (
    "INSERT INTO signed_orders ("
    + ", ".join(name for name, _ in _ORDER_ARRAYS)
    + ", custodial, matched_wh, status, match_failures, created_at, updated_at) SELECT "
    + ", ".join(f"u.{name}" for name, _ in _ORDER_ARRAYS)
    + ", false, 0, %(status)s, 0, %(now)s, %(now)s FROM unnest("
    + ", ".join(f"%({name})s::{kind}[]" for name, kind in _ORDER_ARRAYS)
    + ") WITH ORDINALITY AS u("
    + ", ".join(name for name, _ in _ORDER_ARRAYS)
    + ", n) ORDER BY u.n"
)
# One statement for the batch's events (their payloads as one JSON array); each row's id comes
# back with its order's hash.
_INSERT_EVENTS = (
    "INSERT INTO outbox (chain_id, block_number, topic, payload, created_at) "
    "SELECT %(chain_id)s, 0, 'order.placed', p, %(created_at)s "
    "FROM json_array_elements(%(payloads)s::json) WITH ORDINALITY AS u(p, n) ORDER BY n "
    "RETURNING id, payload->>'order_hash'"
)


@dataclass(eq=False)
class Pending:
    """A wallet's order, signed by the maker's own key, waiting for its batch."""

    account_id: uuid.UUID
    order: eip712.Order
    order_id: str  # 0x-hex EIP-712 digest
    signature: bytes
    head: tuple[int, int]  # (time, number) of the latest block, at most CLOCK_MAX_AGE_S old
    market: str  # the EnergyMarket's address: the spender of a bid, the operator of a REC offer
    future: asyncio.Future[str | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class OrderWriter:
    """The batched writer of one event loop and database (see the module's docstring). Its
    batches run on a thread of their own with a sync connection: a batch's round trips and
    Python do not wait for turns on the event loop (under load, batches of ~14 orders waited
    123 ms for them), and the loop is woken once per batch to answer its requests."""

    def __init__(self, settings: Settings, conninfo: str) -> None:
        self.settings = settings
        self.conninfo = conninfo
        self.queue: queue.SimpleQueue[Pending | None] = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self.batches = 0  # committed batches, and the orders they stored (tests, metrics)
        self.stored = 0
        self.ledger = Ledger(chain_id=settings.chain_id)  # reserved funds per claim

    async def submit(self, pending: Pending) -> str | None:
        """The order's id once committed; ASK_CHAIN; or the final refusal raised."""
        with self.lock:  # the thread ends only under this lock, with nothing queued
            if self.thread is None:
                self._start()
            self.queue.put(pending)
        return await pending.future

    async def close(self) -> None:
        """Stop after the orders already queued (their requests are answered)."""
        with self.lock:
            thread = self.thread
            if thread is not None:
                self.queue.put(None)
        if thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, thread.join)

    def _run(self) -> None:
        connection: psycopg.Connection[Any] | None = None  # this thread's own
        publisher = (
            OrderPublisher(self.settings, self.conninfo) if self.settings.redis_url else None
        )
        try:
            stop = False
            while not stop:
                batch, stop = self._next_batch()
                if not batch:
                    continue
                messages: list[dict[str, Any]] = []
                try:
                    if connection is None or connection.closed:
                        connection = psycopg.Connection.connect(
                            self.conninfo, application_name=APPLICATION_NAME
                        )
                    outcomes, messages = self._store_batch(connection, batch)
                except Exception as exc:  # a broken connection or an unknown failure: the chain
                    log.warning("order batch failed, its orders take the sync intake: %r", exc)
                    _close(connection)
                    connection = None
                    outcomes = [ASK_CHAIN] * len(batch)
                _answer(batch, outcomes)  # committed: the requests need not wait for the stream
                if publisher is not None and messages:
                    publisher.put(messages)
        finally:
            _close(connection)
            if publisher is not None:
                publisher.close()

    def _next_batch(self) -> tuple[list[Pending], bool]:
        """The queued orders (up to a batch, waiting for the first) and whether the thread ends
        after them: closed (and nothing queued since), or idle for IDLE_S (an idle writer holds
        no connection)."""
        try:
            item = self.queue.get(timeout=IDLE_S)
        except queue.Empty:
            item = None
        batch: list[Pending] = []
        while item is not None:
            batch.append(item)
            if len(batch) >= self.settings.intake_batch_max_orders:
                return batch, False
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return batch, False
        with self.lock:  # submit queues under it: nothing arrives unseen while this thread ends
            if not self.queue.empty():
                return batch, False
            self.thread = None
            return batch, True

    def _start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="order-writer", daemon=True)
        self.thread.start()

    def _store_batch(
        self, connection: psycopg.Connection[Any], batch: list[Pending]
    ) -> tuple[list[str | GridLedgerError | None], list[dict[str, Any]]]:
        attempts = 1
        while True:
            try:
                return self._transaction(connection, batch)
            except psycopg.errors.DeadlockDetected:  # another worker's batch: try again
                if attempts == 3:
                    raise
                attempts += 1

    def _transaction(
        self, connection: psycopg.Connection[Any], batch: list[Pending]
    ) -> tuple[list[str | GridLedgerError | None], list[dict[str, Any]]]:
        """Check every order of `batch` in order and insert those that pass, in one transaction;
        each order's outcome (its id: stored, ASK_CHAIN or the refusal) and the outbox messages
        of the stored ones."""
        makers = sorted({p.order.maker.lower() for p in batch})
        ids = [p.order_id for p in batch]
        market = batch[0].market.lower()  # one writer, one deployment
        with connection.pipeline(), connection.transaction():  # BEGIN with the reads
            connection.execute(_LOCK, {"class": intake.INTAKE_LOCK_CLASS, "makers": makers})
            reads = self.ledger.queue(connection, (claim_of(p.order) for p in batch), market=market)
            stored = connection.execute(_STORED, {"ids": ids})
            meters = connection.execute(
                _METERS, {"ids": sorted({"0x" + p.order.meterId.hex() for p in batch})}
            )
            active = connection.execute(_ACTIVE, {"ids": sorted({p.account_id for p in batch})})
            funds = self.ledger.fetch(connection, reads)
            seen = {row[0] for row in stored.fetchall()}
            owners = dict(meters.fetchall())
            accounts = {row[0] for row in active.fetchall()}
            outcomes = [
                self._check(p, funds, seen, owners)
                if p.account_id in accounts
                else Unauthenticated("unknown or inactive account")  # deps._check_active's
                for p in batch
            ]
            accepted = [
                p for p, outcome in zip(batch, outcomes, strict=True) if isinstance(outcome, str)
            ]
            inserted = self._insert(connection, accepted) if accepted else None
        # the pipeline sent the inserts with the COMMIT: their outbox ids are in now
        messages = _messages(*inserted) if inserted else []
        self.batches += 1
        self.stored += len(accepted)
        return outcomes, messages

    def _check(
        self,
        pending: Pending,
        funds: BatchFunds,
        seen: set[str],
        owners: dict[str, uuid.UUID],
    ) -> str | GridLedgerError | None:
        """One order's outcome; an accepted order's reservation joins its claim's
        `funds.committed` and its id `seen`, so later orders of the batch are checked against
        it. A refusal on mirrored values is not final: ASK_CHAIN."""
        order, claim = pending.order, claim_of(pending.order)
        state = funds.state(
            claim, head=pending.head, max_lag_blocks=self.settings.intake_mirror_max_lag_blocks
        )
        if state is None:
            return ASK_CHAIN
        now, nonce, mirrored = state
        try:
            intake.check_wallet_order(
                order, intake.ChainState(now=now, nonce=nonce, funds=mirrored), signer=order.maker
            )
            intake.check_covered(order, mirrored, funds.committed[claim])
        except (InsufficientCollateral, InsufficientFunds):
            self.ledger.forget(claim)  # count afresh: fills and cancels may have freed some
            return ASK_CHAIN  # and the chain may be ahead of the mirror
        except (InvalidOrder, GateClosed, OrderExpired):
            return ASK_CHAIN
        if pending.order_id in seen:
            return DuplicateOrder(f"order {pending.order_id} exists", order_id=pending.order_id)
        if order.product == eip712.ENERGY and not meter_owned(
            order, pending.account_id, owners.get("0x" + order.meterId.hex())
        ):
            return not_owned(order)
        seen.add(pending.order_id)
        funds.committed[claim] += reserves(order, mirrored)
        return pending.order_id

    def _insert(
        self, connection: psycopg.Connection[Any], batch: list[Pending]
    ) -> tuple[list[dict[str, Any]], psycopg.Cursor[Any]]:
        """Queue the inserts of the batch's orders and their `order.placed` outbox rows (in the
        caller's pipeline: they go with its COMMIT); the rows' payloads and the cursor that
        returns (outbox id, order hash) for them."""
        now = utc_now()
        orders = [pending.order for pending in batch]
        payloads = [
            order_events.payload(
                order_hash=pending.order_id,
                product=order.product,
                asset_id=order.assetId,
                delivery_start=order.deliveryStart,
                side=order.side,
                price=order.price,
            )
            for pending, order in zip(batch, orders, strict=True)
        ]
        connection.execute(_INSERT_ORDERS, _columns(batch, now))
        events = connection.execute(
            _INSERT_EVENTS,
            {"chain_id": self.settings.chain_id, "payloads": Json(payloads), "created_at": now},
        )
        return payloads, events


def _messages(payloads: list[dict[str, Any]], events: psycopg.Cursor[Any]) -> list[dict[str, Any]]:
    """The committed outbox rows of `payloads`, as the relay sends them (`RedisStreamSink.send`)."""
    ids = {order_hash: id_ for id_, order_hash in events.fetchall()}
    return [
        {
            "id": ids[payload["order_hash"]],
            "topic": "order.placed",
            "block_number": 0,
            "payload": payload,
        }
        for payload in payloads
    ]


def _columns(batch: list[Pending], now: datetime) -> dict[str, Any]:
    """`intake.row_of`'s values of the batch's open orders inserted at `now`, as _INSERT_ORDERS'
    arrays: a SQLModel row per order took a quarter of the API's CPU per order under load, a
    parameter set per row (executemany) or psycopg dumping a list element by element a sixth of
    the writer's. Each array goes as one array literal: every value is a decimal integer, a
    0x-hex string or a UUID, nothing to quote or escape."""
    orders = [pending.order for pending in batch]
    return {
        "order_hash": _array(pending.order_id for pending in batch),
        "account_id": _array(str(pending.account_id) for pending in batch),
        "maker": _array(order.maker.lower() for order in orders),
        "side": _array(str(order.side) for order in orders),
        "product": _array(str(order.product) for order in orders),
        "asset_id": _array(str(order.assetId) for order in orders),
        "meter_id": _array("0x" + order.meterId.hex() for order in orders),
        "quantity_wh": _array(str(order.quantityWh) for order in orders),
        "price": _array(str(order.price) for order in orders),
        "delivery_start": _array(str(order.deliveryStart) for order in orders),
        "delivery_end": _array(str(order.deliveryEnd) for order in orders),
        "expiry": _array(str(order.expiry) for order in orders),
        "nonce": _array(str(order.nonce) for order in orders),
        "salt": _array(str(order.salt) for order in orders),
        "signature": _array("0x" + pending.signature.hex() for pending in batch),
        "status": OrderStatus.OPEN.value,
        "now": now,
    }


def _array(values: Iterable[str]) -> str:
    """A PostgreSQL array literal of values that need no quoting (see `_columns`)."""
    return "{" + ",".join(values) + "}"


def _close(connection: psycopg.Connection[Any] | None) -> None:
    if connection is not None:
        with contextlib.suppress(psycopg.Error):
            connection.close()


def _answer(batch: list[Pending], outcomes: list[str | GridLedgerError | None]) -> None:
    """Hand each request its outcome on its own event loop: one wake-up per loop and batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Pending, Any]]] = {}
    for pending, outcome in zip(batch, outcomes, strict=True):
        by_loop.setdefault(pending.future.get_loop(), []).append((pending, outcome))
    for loop, answers in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, answers)


def _settle(answers: list[tuple[Pending, Any]]) -> None:
    for pending, outcome in answers:
        if pending.future.done():  # the request went away meanwhile
            continue
        if isinstance(outcome, GridLedgerError):
            pending.future.set_exception(outcome)
        else:
            pending.future.set_result(outcome)


# One writer per (event loop, database URL), like the async read pools (backend/core/async_db.py).
_WRITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, OrderWriter]] = (
    weakref.WeakKeyDictionary()
)


def writer_for(settings: Settings) -> OrderWriter | None:
    """This event loop's writer for `settings.database_url`; None without an async driver for
    it (SQLite: the sync intake stores every order)."""
    return loop_local(_WRITERS, settings, lambda conninfo: OrderWriter(settings, conninfo))


async def close_writers() -> None:
    """Stop this event loop's writers (the app's shutdown)."""
    for writer in _WRITERS.pop(asyncio.get_running_loop(), {}).values():
        await writer.close()


def all_writers() -> list[OrderWriter]:
    """Every event loop's writers (their counters: tests)."""
    return [writer for writers in list(_WRITERS.values()) for writer in writers.values()]

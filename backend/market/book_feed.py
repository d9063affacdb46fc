"""The order book of `trading.market.<id>` over the WebSocket: a snapshot, then deltas.

Any process may place, cancel or fill an order; each change reaches every API process as an
outbox message: `order.placed` and `order.cancelled` (API, matcher; the indexer for on-chain
cancels) and `trade.created` (fills, from the indexer); `chain.reorg` resends snapshots. A
delta carries the absolute state of each price level the message touched (`quantity_wh` "0":
the level is gone), re-read from the database when the message arrives. Re-reads only move
forward in time, so a socket's book converges on `GET /v1/trading/orderbook` whatever the
order of the messages, and a duplicate is harmless. Expiry announces nothing: a level whose
orders expired is corrected by its next delta or snapshot.

`sequence` numbers one socket's messages per market, the snapshot included. A delta the
server could not compute (chain or database unavailable) is skipped with its number, so the
client sees the gap and re-subscribes: every subscribe sends a fresh snapshot.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from backend.core.errors import ServiceUnavailable
from backend.market import orders as eip712
from backend.market.book import live_levels, order_book
from backend.market.ids import market_id_of, parse_market_id
from backend.market.models import SignedOrder
from backend.market.schemas import PriceLevel
from indexer.models import Trade

log = logging.getLogger("gridledger.market")

SNAPSHOT_DEPTH = 1_000  # levels per side in a snapshot
BOOK_TOPICS = ("order.placed", "order.cancelled", "trade.created")
Level = tuple[int, int]  # (side, price)
Message = dict[str, Any]  # a JSON object: an outbox payload or a message to the socket


def channel_of(market_id: str) -> str:
    return f"trading.market.{market_id}"


def touched_levels(session: Session, topic: str, payload: Message) -> dict[str, set[Level]]:
    """The (side, price) levels per market that an outbox message may have changed."""
    if topic == "trade.created":
        trade = session.get(Trade, payload["trade_id"])
        hashes = [trade.sell_order_hash, trade.buy_order_hash] if trade is not None else []
    elif topic in BOOK_TOPICS:
        hashes = [payload["order_hash"]]
    else:
        return {}
    touched: dict[str, set[Level]] = defaultdict(set)
    for product, asset_id, start, side, price in session.execute(
        select(
            col(SignedOrder.product),
            col(SignedOrder.asset_id),
            col(SignedOrder.delivery_start),
            col(SignedOrder.side),
            col(SignedOrder.price),
        ).where(col(SignedOrder.order_hash).in_(hashes))
    ):
        touched[market_id_of(product=product, asset_id=asset_id, delivery_start=start)].add(
            (side, price)
        )
    return touched


def level_states(
    session: Session, market_id: str, now: int, levels: set[Level]
) -> dict[int, list[PriceLevel]]:
    """The current state of some levels of one market, by side (best first).

    The aggregate of `book.order_book` restricted to the levels' prices.
    """
    product, asset_id, start, _ = parse_market_id(market_id)
    found: dict[Level, tuple[int, int]] = {}
    if levels:
        rows = session.execute(
            live_levels(product=product, asset_id=asset_id, delivery_start=start, now=now).where(
                col(SignedOrder.price).in_({price for _, price in levels})
            )
        ).all()
        found = {(side, price): (int(quantity), count) for side, price, quantity, count in rows}
    states: dict[int, list[PriceLevel]] = {eip712.BUY: [], eip712.SELL: []}
    for side, price in levels:
        quantity, count = found.get((side, price), (0, 0))
        states[side].append(PriceLevel(price=price, quantity_wh=quantity, orders=count))
    states[eip712.BUY].sort(key=lambda level: -level.price)
    states[eip712.SELL].sort(key=lambda level: level.price)
    return states


def _levels(levels: list[PriceLevel]) -> list[Message]:
    return [level.model_dump(mode="json") for level in levels]


def snapshot_body(session: Session, market_id: str, now: int) -> Message:
    """A market's snapshot payload, without its per-socket `sequence`."""
    book = order_book(session, market_id, now=now, depth=SNAPSHOT_DEPTH)
    return {
        "event": "orderbook.snapshot",
        "market_id": market_id,
        "bids": _levels(book.bids),
        "asks": _levels(book.asks),
    }


States = dict[int, list[PriceLevel]]  # side -> the touched levels' new state, best first


def book_changes(
    session: Session,
    topic: str,
    payload: Message,
    followed: Collection[str],
    now: Callable[[], int],
) -> dict[str, States | None]:
    """The new state of the levels one outbox message touched, for the `followed` markets it
    touched; None where it could not be computed (chain or database unavailable: the market's
    subscribers burn a number). Read once per message, however many sockets follow."""
    named = payload.get("market_id")  # API messages name their market: no lookup for others
    if not followed or topic not in BOOK_TOPICS or (named is not None and named not in followed):
        return {}
    try:
        touched = touched_levels(session, topic, payload)
    except SQLAlchemyError as exc:
        log.warning("order book delta skipped (%s): %s", topic, exc)
        session.rollback()
        return dict.fromkeys(followed)
    changes: dict[str, States | None] = {}
    for market_id, levels in touched.items():
        if market_id not in followed:
            continue
        try:
            changes[market_id] = level_states(session, market_id, now(), levels)
        except (ServiceUnavailable, SQLAlchemyError) as exc:
            log.warning("order book delta of %s skipped: %s", market_id, exc)
            session.rollback()
            changes[market_id] = None
    return changes


class BookFeed:
    """One socket's order-book channels and their sequence numbers. Not thread-safe: the
    socket (or the process's fan-out, backend/api/ws_hub.py) serialises its calls."""

    def __init__(self, now: Callable[[], int]) -> None:
        self.now = now  # chain time, as `GET /v1/trading/orderbook` judges expiry and gate closure
        self.sequence: dict[str, int] = {}  # followed market id -> last number used

    def _next(self, market_id: str) -> int:
        self.sequence[market_id] = self.sequence.get(market_id, 0) + 1
        return self.sequence[market_id]

    def stamp(self, body: Message) -> Message:
        """A snapshot or delta payload numbered in this socket's sequence of its market."""
        return {**body, "sequence": self._next(body["market_id"])}

    def follow(self, session: Session, market_id: str) -> Message:
        """Start (or restart) following a market: its snapshot payload."""
        session.rollback()  # read what is committed now
        return self.stamp(snapshot_body(session, market_id, self.now()))

    def unfollow(self, market_id: str) -> None:
        self.sequence.pop(market_id, None)

    def deltas(self, changes: dict[str, States | None]) -> list[tuple[str, Message]]:
        """(channel, delta) for the followed markets among `changes`; a None burns a number."""
        routed: list[tuple[str, Message]] = []
        for market_id, states in changes.items():
            if market_id not in self.sequence:
                continue
            if states is None:
                self._next(market_id)
                continue
            body = {
                "event": "orderbook.delta",
                "market_id": market_id,
                "bids": _levels(states[eip712.BUY]),
                "asks": _levels(states[eip712.SELL]),
            }
            routed.append((channel_of(market_id), self.stamp(body)))
        return routed

    def on_message(
        self, session: Session, topic: str, payload: Message
    ) -> list[tuple[str, Message]]:
        """(channel, payload) pairs for one outbox message: deltas, or snapshots after a reorg."""
        if not self.sequence:
            return []
        if topic == "chain.reorg":  # fills may have vanished: start over
            return self._snapshots(session)
        session.rollback()
        return self.deltas(book_changes(session, topic, payload, self.sequence, self.now))

    def _snapshots(self, session: Session) -> list[tuple[str, Message]]:
        routed: list[tuple[str, Message]] = []
        for market_id in list(self.sequence):
            try:
                routed.append((channel_of(market_id), self.follow(session, market_id)))
            except (ServiceUnavailable, SQLAlchemyError) as exc:
                log.warning("order book snapshot of %s skipped: %s", market_id, exc)
                session.rollback()
                self._next(market_id)
        return routed

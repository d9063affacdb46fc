"""The order book: the live orders of one market (`order_state.is_live`), as rows for the
matcher and as price levels for `GET /v1/trading/orderbook` and the WebSocket feed."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Executable,
    Integer,
    and_,
    bindparam,
    func,
    union_all,
)
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from backend.core.async_db import Query
from backend.market import orders as eip712
from backend.market.ids import parse_market_id
from backend.market.models import SignedOrder
from backend.market.order_state import MIRROR_JOIN, is_live, traded_wh
from backend.market.schemas import OrderBook, PriceLevel
from indexer.models import MarketOrder


def _in_market(*, product: Any, asset_id: Any, delivery_start: Any) -> ColumnElement[bool]:
    return and_(
        col(SignedOrder.product) == product,
        col(SignedOrder.asset_id) == asset_id,
        col(SignedOrder.delivery_start) == delivery_start,
    )


def open_orders(
    session: Session,
    *,
    product: int,
    asset_id: int,
    delivery_start: int,
    delivery_end: int,
    now: int,
) -> list[SignedOrder]:
    """Live orders of one exact market (period included) by seq, `matched_wh` raised to what
    the chain has filled (e.g. by a taker's fillOrder)."""
    rows = session.exec(
        select(SignedOrder, traded_wh())
        .outerjoin(MarketOrder, MIRROR_JOIN)
        .where(
            is_live(now),
            _in_market(product=product, asset_id=asset_id, delivery_start=delivery_start),
            col(SignedOrder.delivery_end) == delivery_end,
        )
        .order_by(col(SignedOrder.seq))
    ).all()
    live = []
    for row, traded in rows:
        if traded > row.matched_wh:
            row.matched_wh = traded
        live.append(row)
    return live


def live_levels(
    *, product: Any, asset_id: Any, delivery_start: Any, now: Any
) -> Select[int, int, int, int]:
    """SELECT side, price, remaining Wh, order count of the live orders of one market, grouped
    by (side, price). Callers narrow it (`.where`), order and limit it."""
    return (
        select(
            col(SignedOrder.side),
            col(SignedOrder.price),
            func.sum(col(SignedOrder.quantity_wh) - traded_wh()).label("remaining"),
            func.count().label("orders"),
        )
        .select_from(SignedOrder)
        .outerjoin(MarketOrder, MIRROR_JOIN)
        .where(
            is_live(now),
            _in_market(product=product, asset_id=asset_id, delivery_start=delivery_start),
        )
        .group_by(col(SignedOrder.side), col(SignedOrder.price))
    )


def _order_book_statement() -> Executable:
    """The best `depth` levels of each side of one market, both sides in one statement (one
    round trip); parameters `product`, `asset_id`, `delivery_start`, `now`, `depth`."""
    now: Any = bindparam("now", type_=BigInteger)
    sides = [
        live_levels(
            product=bindparam("product", type_=Integer),
            asset_id=bindparam("asset_id", type_=BigInteger),
            delivery_start=bindparam("delivery_start", type_=BigInteger),
            now=now,
        )
        .where(col(SignedOrder.side) == side)
        .order_by(col(SignedOrder.price).desc() if descending else col(SignedOrder.price))
        .limit(bindparam("depth", type_=Integer))
        .subquery()
        for side, descending in ((eip712.BUY, True), (eip712.SELL, False))
    ]
    return union_all(*(side.select() for side in sides)).subquery().select()


ORDER_BOOK = Query(_order_book_statement())
"""SELECT side, price, remaining Wh, order count (`order_book_params`, `order_book_of`)."""


def order_book_params(market_id: str, *, now: int, depth: int = 50) -> dict[str, int]:
    product, asset_id, start, _ = parse_market_id(market_id)
    return {
        "product": product,
        "asset_id": asset_id,
        "delivery_start": start,
        "now": now,
        "depth": depth,
    }


def order_book_of(market_id: str, rows: Iterable[Sequence[Any]], *, now: int) -> OrderBook:
    """The `OrderBook` of the rows of `ORDER_BOOK`."""
    levels: dict[int, list[PriceLevel]] = {eip712.BUY: [], eip712.SELL: []}
    for side, price, remaining, orders in rows:
        levels[side].append(PriceLevel(price=price, quantity_wh=int(remaining), orders=orders))
    levels[eip712.BUY].sort(key=lambda level: -level.price)
    levels[eip712.SELL].sort(key=lambda level: level.price)
    return OrderBook(
        market_id=market_id, bids=levels[eip712.BUY], asks=levels[eip712.SELL], timestamp=now
    )


def order_book_json(market_id: str, rows: Iterable[Sequence[Any]], *, now: int) -> bytes:
    """The JSON of `order_book_of(...)`, byte for byte, without building the models (the
    uncached order book's hot path; a test holds the two equal)."""
    bids: list[tuple[int, int, int]] = []
    asks: list[tuple[int, int, int]] = []
    for side, price, remaining, orders in rows:
        (bids if side == eip712.BUY else asks).append((price, int(remaining), orders))
    bids.sort(key=lambda level: -level[0])
    asks.sort(key=lambda level: level[0])

    def levels(side: list[tuple[int, int, int]]) -> str:
        return ",".join(f'{{"price":"{p}","quantity_wh":"{q}","orders":{n}}}' for p, q, n in side)

    return (
        f'{{"market_id":{json.dumps(market_id, ensure_ascii=False)},"bids":[{levels(bids)}],'
        f'"asks":[{levels(asks)}],"timestamp":{now}}}'
    ).encode()


def order_book(session: Session, market_id: str, *, now: int, depth: int = 50) -> OrderBook:
    """Live orders aggregated by price (`ORDER_BOOK`)."""
    params = order_book_params(market_id, now=now, depth=depth)
    rows = session.execute(ORDER_BOOK.statement, params)
    return order_book_of(market_id, rows, now=now)

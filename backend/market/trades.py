"""Trades from the indexer's mirror: the public tape, an account's history, and price bars."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, TypeVar

import orjson
from sqlalchemy import BigInteger, Integer, String, bindparam, or_
from sqlalchemy import select as select_core
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from backend.core.async_db import Query
from backend.core.db import table_of
from backend.core.pagination import decode_cursor, keyset_cut, keyset_page
from backend.market import orders as eip712
from backend.market.ids import energy_market_id, parse_market_id, rec_market_id
from backend.market.schemas import PriceBar, TradePublic
from indexer.models import Trade

_Query = TypeVar("_Query", bound=SelectOfScalar[Trade])


def public_trade(t: Trade | Any) -> TradePublic:
    """A stored trade (or a row of its columns) as the API shows it."""
    market = (
        energy_market_id(t.delivery_start or 0)
        if t.product == "energy"
        else rec_market_id(t.certificate_id or 0)
    )
    return TradePublic(
        trade_id=t.trade_id,
        market_id=market,
        product=t.product,
        status=t.status,
        seller=t.seller,
        buyer=t.buyer,
        quantity_wh=t.quantity_wh,
        price=t.price,
        payment=t.payment,
        delivery_start=t.delivery_start,
        delivery_end=t.delivery_end,
        certificate_id=t.certificate_id,
        sell_order_hash=t.sell_order_hash,
        buy_order_hash=t.buy_order_hash,
        tx_hash=t.created_tx,
        block_number=t.created_block,
        timestamp=t.created_at,
    )


def _in_market(query: _Query, market_id: str | None) -> _Query:
    if market_id is None:
        return query
    product, asset_id, start, _ = parse_market_id(market_id)
    if product == eip712.ENERGY:
        return query.where(col(Trade.product) == "energy", col(Trade.delivery_start) == start)
    return query.where(col(Trade.product) == "rec", col(Trade.certificate_id) == asset_id)


def list_trades(
    session: Session,
    *,
    market_id: str | None,
    cursor: str | None,
    limit: int,
    address: str | None = None,
) -> tuple[list[TradePublic], str | None]:
    """One page of trades, newest first: of one market, of one party (`address`), or all."""
    query = _in_market(select(Trade), market_id)
    if address is not None:
        query = query.where(or_(col(Trade.seller) == address, col(Trade.buyer) == address))
    rows, next_cursor = keyset_page(session, query, Trade.trade_id, cursor, limit)
    return [public_trade(t) for t in rows], next_cursor


@lru_cache(maxsize=16)
def trades_query(*, product: str | None, in_market: bool, party: bool, after: bool) -> Query:
    """`list_trades` (and the transfers of backend/energy/services.py) as one statement of the
    trade's columns, newest first: `product` "energy" or "rec" (None: both), narrowed to one
    market (`delivery_start` or `certificate_id`), one party (`address`) and after a cursor
    (`after`) when asked for; `rows` is the page size + 1 (`trades_params`, `trades_page`)."""
    query = select_core(table_of(Trade))
    if product is not None:
        query = query.where(col(Trade.product) == product)
    if in_market:
        market = Trade.delivery_start if product == "energy" else Trade.certificate_id
        query = query.where(col(market) == bindparam("market", type_=BigInteger))
    if party:
        address = bindparam("address", type_=String)
        query = query.where(or_(col(Trade.seller) == address, col(Trade.buyer) == address))
    if after:
        query = query.where(col(Trade.trade_id) < bindparam("after", type_=BigInteger))
    return Query(query.order_by(col(Trade.trade_id).desc()).limit(bindparam("rows", type_=Integer)))


def trades_params(
    *, market_id: str | None, cursor: str | None, limit: int, address: str | None = None
) -> tuple[Query, dict[str, Any]]:
    """The query and parameters of one page of `list_trades` (NotFound for a bad market id)."""
    product = None
    params: dict[str, Any] = {"rows": limit + 1, "address": address}
    if market_id is not None:
        kind, asset_id, start, _ = parse_market_id(market_id)
        product = "energy" if kind == eip712.ENERGY else "rec"
        params["market"] = start if kind == eip712.ENERGY else asset_id
    after = decode_cursor(cursor)
    params["after"] = after
    query = trades_query(
        product=product,
        in_market=market_id is not None,
        party=address is not None,
        after=after is not None,
    )
    return query, {k: v for k, v in params.items() if v is not None}


def trades_page(rows: Sequence[Any], limit: int) -> tuple[list[Any], str | None]:
    """The page of `trades_query`'s rows and the next cursor."""
    return keyset_cut(list(rows), limit, key_of=lambda row: row.trade_id)


def trades_json(rows: Sequence[Any], limit: int) -> bytes:
    """The JSON of `Page[TradePublic]` of `trades_query`'s rows (`trades_page`, `public_trade`),
    byte for byte, without building the models: the uncached trade list's hot path
    (backend/api/fast_trades.py; a test holds the two equal). Amounts as decimal strings."""
    page, next_cursor = trades_page(rows, limit)
    items = [
        {
            "trade_id": t.trade_id,
            "market_id": (
                energy_market_id(t.delivery_start or 0)
                if t.product == "energy"
                else rec_market_id(t.certificate_id or 0)
            ),
            "product": t.product,
            "status": t.status,
            "seller": t.seller,
            "buyer": t.buyer,
            "quantity_wh": str(t.quantity_wh),
            "price": str(t.price),
            "payment": str(t.payment),
            "delivery_start": t.delivery_start,
            "delivery_end": t.delivery_end,
            "certificate_id": t.certificate_id,
            "sell_order_hash": t.sell_order_hash,
            "buy_order_hash": t.buy_order_hash,
            "tx_hash": t.created_tx,
            "block_number": t.created_block,
            "timestamp": t.created_at,
        }
        for t in page
    ]
    return orjson.dumps({"items": items, "next_cursor": next_cursor})


def price_bars(
    session: Session, *, start: int | None, end: int | None, limit: int = 500
) -> list[PriceBar]:
    """OHLC and volume per 15-minute delivery period of energy trades (by trade id order)."""
    energy = [col(Trade.product) == "energy"]
    if start is not None:
        energy.append(col(Trade.delivery_start) >= start)
    if end is not None:
        energy.append(col(Trade.delivery_start) < end)
    periods = session.exec(
        select(Trade.delivery_start)
        .where(*energy)
        .group_by(col(Trade.delivery_start))
        .order_by(col(Trade.delivery_start).desc())
        .limit(limit)
    ).all()
    if not periods:
        return []
    bars: dict[int, PriceBar] = {}
    in_periods = (
        select(Trade)
        .where(*energy, col(Trade.delivery_start).in_(periods))
        .order_by(col(Trade.trade_id))
    )
    for t in session.exec(in_periods):
        period = t.delivery_start or 0  # set on every energy trade
        bar = bars.get(period)
        if bar is None:
            bars[period] = PriceBar(
                market_id=energy_market_id(period),
                delivery_start=period,
                delivery_end=t.delivery_end or 0,
                open=t.price,
                high=t.price,
                low=t.price,
                close=t.price,
                volume_wh=t.quantity_wh,
                trades=1,
            )
        else:
            bar.high, bar.low, bar.close = max(bar.high, t.price), min(bar.low, t.price), t.price
            bar.volume_wh += t.quantity_wh
            bar.trades += 1
    return [bars[p] for p in sorted(bars)]

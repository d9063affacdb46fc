"""A maker's orders as the API shows them: status and fills from `order_state.public_status`."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Executable, Row
from sqlalchemy import select as select_core
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from backend.accounts.models import Account
from backend.core.db import table_of
from backend.core.errors import NotFound
from backend.core.pagination import keyset_cut, keyset_page, keyset_query
from backend.market.ids import PRODUCT_NAMES, SIDE_NAMES, market_id_of
from backend.market.models import SignedOrder
from backend.market.order_state import MIRROR_JOIN, public_status, traded_wh
from backend.market.schemas import OrderPublic, OrderPublicStatus
from indexer.models import MarketOrder

# statuses of an order that can still trade
TRADING = (OrderPublicStatus.OPEN, OrderPublicStatus.PARTIALLY_FILLED)


def public_order(row: SignedOrder | Row[Any], traded_wh: int, status: str) -> OrderPublic:
    """`row` (a stored order, or a row of its columns) with the Wh it traded and its public
    status (the columns of `with_state`)."""
    filled = min(traded_wh, row.quantity_wh)
    return OrderPublic(
        id=row.order_hash,
        seq=row.seq or 0,
        status=OrderPublicStatus(status),
        market_id=market_id_of(
            product=row.product, asset_id=row.asset_id, delivery_start=row.delivery_start
        ),
        maker=row.maker,
        side=SIDE_NAMES[row.side],
        product=PRODUCT_NAMES[row.product],
        asset_id=row.asset_id,
        meter_id=row.meter_id,
        quantity_wh=row.quantity_wh,
        filled_wh=filled,
        remaining_wh=row.quantity_wh - filled if status in TRADING else 0,
        price=row.price,
        delivery_start=row.delivery_start,
        delivery_end=row.delivery_end,
        expiry=row.expiry,
        nonce=row.nonce,
        salt=int(row.salt),
        cancel_tx=row.cancel_tx,
        withdrawn_reason=row.withdrawn_reason,
        created_at=row.created_at,
    )


def with_state(now: int) -> Select[SignedOrder, int, str, bool]:
    """SELECT order, traded Wh, public status, whether the chain knows the order."""
    return (
        select(
            SignedOrder,
            traded_wh(),
            public_status(now),
            col(MarketOrder.order_hash).is_not(None),
        )
        .select_from(SignedOrder)
        .outerjoin(MarketOrder, MIRROR_JOIN)
    )


def find_order(session: Session, account: Account, order_id: str) -> SignedOrder:
    """The stored order `order_id` of `account` (any account's, for operators and admins)."""
    row = session.exec(
        select(SignedOrder).where(col(SignedOrder.order_hash) == order_id.lower())
    ).first()
    if row is None or (
        row.account_id != account.id and not account.has_role_any(("operator", "admin"))
    ):
        raise NotFound(f"no order {order_id}")
    return row


def order_state(session: Session, row: SignedOrder, *, now: int) -> tuple[int, str, bool]:
    """(traded Wh, public status, whether the chain knows it) of a stored order."""
    _, traded, status, on_chain = session.execute(
        with_state(now).where(col(SignedOrder.seq) == row.seq)
    ).one()
    return traded, status, on_chain


def order_public(session: Session, row: SignedOrder, *, now: int) -> OrderPublic:
    traded, status, _ = order_state(session, row, now=now)
    return public_order(row, traded, status)


def _mine(query: Any, account_id: uuid.UUID, now: int, status: OrderPublicStatus | None) -> Any:
    query = query.where(col(SignedOrder.account_id) == account_id)
    return query.where(public_status(now) == status) if status else query


def list_my_orders(
    session: Session,
    account: Account,
    *,
    now: int,
    cursor: str | None,
    limit: int,
    status: OrderPublicStatus | None = None,
) -> tuple[list[OrderPublic], str | None]:
    """One page of the account's orders, newest first; `status` filters before the page is cut."""
    query = _mine(with_state(now), account.id, now, status)
    rows, next_cursor = keyset_page(
        session, query, SignedOrder.seq, cursor, limit, key_of=lambda r: r[0].seq
    )
    return [
        public_order(row, traded, row_status) for row, traded, row_status, _ in rows
    ], next_cursor


def my_orders_query(
    account_id: uuid.UUID,
    *,
    now: int,
    cursor: str | None,
    limit: int,
    status: OrderPublicStatus | None = None,
) -> Executable:
    """`list_my_orders` as one Core statement (for async reads): the order's columns, then
    `traded` and `public_status`; `my_orders_page` turns its rows into the page."""
    query = select_core(
        *table_of(SignedOrder).c,
        traded_wh().label("traded"),
        public_status(now).label("public_status"),
    ).outerjoin(MarketOrder, MIRROR_JOIN)
    page: Executable = keyset_query(
        _mine(query, account_id, now, status), SignedOrder.seq, cursor, limit
    )
    return page


def my_orders_page(rows: list[Row[Any]], limit: int) -> tuple[list[OrderPublic], str | None]:
    page, next_cursor = keyset_cut(rows, limit, key_of=lambda row: row.seq)
    return [public_order(row, row.traded, row.public_status) for row in page], next_cursor

"""A maker's orders: the status each one shows, and pages filtered by status in SQL."""

from __future__ import annotations

import secrets

from sqlmodel import Session

from backend.accounts.models import Account
from backend.market import orders as eip712
from backend.market.account_orders import list_my_orders, order_public
from backend.market.models import OrderStatus
from backend.market.schemas import OrderPublicStatus
from tests.fixtures.orders import NOW, START, add_order


def maker(session: Session, name: str) -> Account:
    account = Account(email=f"{name}@example.org", address="0x" + secrets.token_hex(20))
    session.add(account)
    session.commit()
    return account


def test_each_order_shows_its_status_fills_and_remaining_wh(db_session):
    account = maker(db_session, "statuses")
    BUY = eip712.BUY
    orders = {
        "open": add_order(db_session, account, BUY, 1_000, 50),
        "matched": add_order(db_session, account, BUY, 1_000, 50, matched_wh=200),
        "taker": add_order(db_session, account, BUY, 1_000, 50, matched_wh=100, mirror_filled=300),
        "filled": add_order(db_session, account, BUY, 1_000, 50, mirror_filled=1_000),
        "cancelled": add_order(db_session, account, BUY, 1_000, 50, status=OrderStatus.CANCELLED),
        "cancelled on chain": add_order(db_session, account, BUY, 1_000, 50, mirror_cancelled=True),
        "expired": add_order(db_session, account, BUY, 1_000, 50, matched_wh=10, expiry=NOW - 1),
    }
    db_session.commit()
    shown = {name: order_public(db_session, row, now=NOW) for name, row in orders.items()}
    assert {name: (o.status, o.filled_wh, o.remaining_wh) for name, o in shown.items()} == {
        "open": (OrderPublicStatus.OPEN, 0, 1_000),
        "matched": (OrderPublicStatus.PARTIALLY_FILLED, 200, 800),
        "taker": (OrderPublicStatus.PARTIALLY_FILLED, 300, 700),
        "filled": (OrderPublicStatus.FILLED, 1_000, 0),
        "cancelled": (OrderPublicStatus.CANCELLED, 0, 0),
        "cancelled on chain": (OrderPublicStatus.CANCELLED, 0, 0),
        "expired": (OrderPublicStatus.EXPIRED, 10, 0),
    }
    # at its delivery start (gate closure) an energy order that has not traded out expires
    closed = order_public(db_session, orders["matched"], now=START)
    assert (closed.status, closed.remaining_wh) == (OrderPublicStatus.EXPIRED, 0)


def test_a_status_filter_still_fills_the_page(db_session):
    account = maker(db_session, "pages")
    for n in range(6):  # newest first: cancelled, open, cancelled, open, ...
        status = OrderStatus.OPEN if n % 2 == 0 else OrderStatus.CANCELLED
        add_order(db_session, account, eip712.BUY, 100 + n, 50, status=status)
    db_session.commit()

    first, cursor = list_my_orders(
        db_session, account, now=NOW, cursor=None, limit=2, status=OrderPublicStatus.OPEN
    )
    assert [o.quantity_wh for o in first] == [104, 102]
    assert cursor is not None
    rest, cursor = list_my_orders(
        db_session, account, now=NOW, cursor=cursor, limit=2, status=OrderPublicStatus.OPEN
    )
    assert [o.quantity_wh for o in rest] == [100]
    assert cursor is None
    everything, _ = list_my_orders(db_session, account, now=NOW, cursor=None, limit=10)
    assert [o.quantity_wh for o in everything] == [105, 104, 103, 102, 101, 100]

"""The order-book feed's level re-read agrees with `book.order_book`, and a delta the
server cannot compute leaves a gap in the sequence."""

from __future__ import annotations

import secrets

from backend.accounts.models import Account
from backend.core.errors import ServiceUnavailable
from backend.market import orders as eip712
from backend.market.book import order_book
from backend.market.book_feed import BookFeed, level_states
from backend.market.models import OrderStatus
from tests.fixtures.orders import NOW, START, add_order

MARKET = f"energy-{START}"


def test_level_states_agree_with_the_order_book(db_session):
    account = Account(email="maker@example.org", address="0x" + secrets.token_hex(20))
    db_session.add(account)
    db_session.commit()
    BUY, SELL = eip712.BUY, eip712.SELL
    add_order(db_session, account, BUY, 1_000, 50)
    add_order(db_session, account, BUY, 500, 50, matched_wh=200)  # matcher ahead of the mirror
    add_order(db_session, account, BUY, 300, 60, mirror_cancelled=True)  # cancelled on chain
    add_order(db_session, account, SELL, 400, 70, mirror_filled=100)  # a taker filled some on chain
    add_order(db_session, account, SELL, 200, 70, expiry=NOW - 1)  # expired
    add_order(db_session, account, SELL, 100, 80, status=OrderStatus.CANCELLED)
    add_order(db_session, account, SELL, 300, 90, mirror_filled=300)  # filled
    add_order(db_session, account, SELL, 250, 95, matched_wh=50, mirror_filled=120)  # mirror ahead
    db_session.commit()

    touched = {(side, price) for side in (BUY, SELL) for price in (50, 60, 70, 80, 90, 95, 99)}
    states = level_states(db_session, MARKET, NOW, touched)
    book = order_book(db_session, MARKET, now=NOW, depth=200)
    assert [level for level in states[BUY] if level.quantity_wh] == book.bids
    assert [level for level in states[SELL] if level.quantity_wh] == book.asks
    assert [(b.price, b.quantity_wh, b.orders) for b in book.bids] == [(50, 1_300, 2)]
    assert [(a.price, a.quantity_wh, a.orders) for a in book.asks] == [(70, 300, 1), (95, 130, 1)]
    assert {
        (level.price, level.quantity_wh, level.orders)
        for level in states[SELL]
        if not level.quantity_wh
    } == {(60, 0, 0), (80, 0, 0), (90, 0, 0), (99, 0, 0), (50, 0, 0)}
    # a period that has started has no book: every level reads as gone
    started = level_states(db_session, MARKET, START, touched)
    assert all(level.quantity_wh == 0 for side in started.values() for level in side)


def test_a_delta_that_cannot_be_computed_leaves_a_gap(db_session):
    account = Account(email="gap@example.org", address="0x" + secrets.token_hex(20))
    db_session.add(account)
    db_session.commit()
    chain_up = [True]

    def now() -> int:
        if not chain_up[0]:
            raise ServiceUnavailable("chain RPC unreachable")
        return NOW

    feed = BookFeed(now)
    assert feed.follow(db_session, MARKET)["sequence"] == 1
    first = add_order(db_session, account, eip712.SELL, 700, 40)
    db_session.commit()
    message = {"order_hash": first.order_hash, "market_id": MARKET}
    assert (
        feed.on_message(db_session, "order.placed", {**message, "market_id": "energy-900"}) == []
    )  # not followed

    chain_up[0] = False
    assert feed.on_message(db_session, "order.placed", message) == []
    chain_up[0] = True
    [(channel, delta)] = feed.on_message(db_session, "order.placed", message)
    assert channel == f"trading.market.{MARKET}"
    assert delta["sequence"] == 3  # 2 was lost: the client sees the jump and re-subscribes
    assert delta["asks"] == [{"price": "40", "quantity_wh": "700", "orders": 1}]  # JSON-ready
    assert delta["bids"] == []

"""The process's WebSocket fan-out (backend/api/ws_hub.py): an outbox message is read from the
database only for channels someone subscribed to, once for all of them; a socket that falls
too far behind is dropped instead of growing the process's memory."""

from __future__ import annotations

import asyncio
from contextlib import contextmanager

from backend.api.ws_hub import Subscriber, WsHub
from backend.core.config import Settings
from backend.market.book_feed import BookFeed
from tests.fixtures.trades import a_trade


def hub_on(db_session, **settings: object) -> WsHub:
    @contextmanager
    def sessions():
        yield db_session

    return WsHub(Settings(_env_file=None, **settings), sessions, now=lambda: 0)


def drain(subscriber: Subscriber) -> list[dict]:
    messages = []
    while not subscriber.queue.empty():
        messages.append(subscriber.queue.get_nowait())
    return messages


def test_messages_are_read_once_and_only_for_subscribed_channels(db_session):
    db_session.add(a_trade(7))
    db_session.flush()
    hub = hub_on(db_session)

    async def scenario() -> tuple[list[int], list[list[dict]]]:
        reads = []
        await hub.deliver("trade.created", {"trade_id": 7})  # nobody listens
        reads.append(hub.reads)
        recs, trades, other = (Subscriber("127.0.0.1", BookFeed(lambda: 0), 10) for _ in "abc")
        hub.subscribers |= {recs, trades, other}
        await hub.handle(recs, {"action": "subscribe", "channels": ["recs"]})
        await hub.handle(trades, {"action": "subscribe", "channels": ["trades"]})
        await hub.handle(other, {"action": "subscribe", "channels": ["trades", "settlements"]})
        for subscriber in (recs, trades, other):
            drain(subscriber)  # the acknowledgements
        await hub.deliver("trade.settled", {"trade_id": 7})  # `settlements`: one reader
        reads.append(hub.reads)
        await hub.deliver("certificate.issued", {"certificate_ids": [1]})  # no read at all
        reads.append(hub.reads)
        await hub.deliver("trade.created", {"trade_id": 7})  # two `trades` readers, one read
        reads.append(hub.reads)
        return reads, [drain(s) for s in (recs, trades, other)]

    reads, (to_recs, to_trades, to_other) = asyncio.run(scenario())
    assert reads == [0, 1, 1, 2]
    assert [m["channel"] for m in to_recs] == ["recs"]
    assert [(m["channel"], m["payload"]["event"]) for m in to_trades] == [
        ("trades", "trade.created")
    ]
    assert [m["channel"] for m in to_other] == ["settlements", "trades"]
    assert to_other[1]["payload"]["trade"]["trade_id"] == 7


def test_a_socket_that_falls_behind_is_closed_not_buffered():
    async def scenario() -> tuple[list[dict], bool]:
        subscriber = Subscriber("127.0.0.1", BookFeed(lambda: 0), max_queue=3)
        for n in range(10):
            subscriber.push({"n": n})
        sent = [message async for message in subscriber.outgoing()]  # ends: it fell behind
        return sent, subscriber.overflowed

    sent, overflowed = asyncio.run(scenario())
    assert sent == [{"n": 0}, {"n": 1}, {"n": 2}] and overflowed


def test_each_address_is_capped(db_session):
    hub = hub_on(db_session, ws_max_connections_per_ip=2)
    assert hub.admit("10.0.0.1") and hub.admit("10.0.0.1")
    assert not hub.admit("10.0.0.1")
    assert hub.admit("10.0.0.2")  # another address has its own places
    hub.release("10.0.0.1")
    assert hub.admit("10.0.0.1")

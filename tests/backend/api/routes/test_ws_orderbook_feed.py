"""Order-book deltas over `/v1/ws`, end to end: orders placed and cancelled through one API
worker, a fill on chain mirrored by the indexer, and a subscriber on another worker (its own
app and engine, sharing only PostgreSQL and Redis, fed from the Redis stream or, configured
without Redis, from the outbox table) who rebuilds the book from the snapshot
and the deltas and ends with exactly `GET /v1/trading/orderbook`."""

from __future__ import annotations

import json

import pytest
from websockets.sync.client import connect

from indexer.outbox import OutboxPublisher, RedisStreamSink
from tests.fixtures.api import match, wallet_bid
from tests.fixtures.app import app_on
from tests.fixtures.indexing import catch_up
from tests.fixtures.server import serve
from tests.fixtures.services import TEST_REDIS_URL


class Subscriber:
    """A WebSocket client that keeps its own copy of one market's book."""

    def __init__(self, socket, channel: str):
        self.socket, self.channel = socket, channel
        self.book: dict[str, dict[int, dict]] = {"bids": {}, "asks": {}}
        self.sequences: list[int] = []

    def receive(self) -> dict:
        message = json.loads(self.socket.recv(timeout=15))
        payload = message["payload"]
        if message["channel"] == self.channel and payload["event"] == "orderbook.snapshot":
            self.book = {
                side: {level["price"]: level for level in payload[side]}
                for side in ("bids", "asks")
            }
            self.sequences.append(payload["sequence"])
        elif message["channel"] == self.channel and payload["event"] == "orderbook.delta":
            for side in ("bids", "asks"):
                for level in payload[side]:
                    if int(level["quantity_wh"]) == 0:  # amounts are decimal strings
                        self.book[side].pop(level["price"], None)
                    else:
                        self.book[side][level["price"]] = level
            self.sequences.append(payload["sequence"])
        return message

    def next_delta(self) -> dict:
        while True:
            message = self.receive()
            if (
                message["channel"] == self.channel
                and message["payload"]["event"] == "orderbook.delta"
            ):
                return message["payload"]

    def levels(self) -> dict:
        return {
            "bids": sorted(self.book["bids"].values(), key=lambda level: -int(level["price"])),
            "asks": sorted(self.book["asks"].values(), key=lambda level: int(level["price"])),
        }


def level(price: int, quantity_wh: int, orders: int) -> dict:
    """A price level as the API sends it: amounts as decimal strings, the count a number."""
    return {"price": str(price), "quantity_wh": str(quantity_wh), "orders": orders}


@pytest.mark.parametrize("feed", ["redis stream", "outbox table"])
def test_subscriber_rebuilds_the_book_from_snapshot_and_deltas(market, feed):
    api, client, seller = market["api"], market["client"], market["seller"]
    market_id = f"energy-{market['period']}"
    channel = f"trading.market.{market_id}"

    def offer(quantity_wh: int, price: int) -> str:
        reply = client.post(
            "/v1/trading/orders",
            headers=seller,
            json={
                "side": "sell",
                "delivery_start": market["period"],
                "quantity_wh": quantity_wh,
                "price": price,
            },
        )
        assert reply.status_code == 202, reply.text
        return reply.json()["id"]

    offer(5_000, 100_000)  # resting before anybody subscribes: only the snapshot tells of it
    other_settings = (
        api.settings
        if feed == "redis stream"
        else api.settings.model_copy(update={"redis_url": ""})
    )
    other_worker, other_engine = app_on(api.settings.database_url, other_settings)
    try:
        with serve(other_worker) as url, connect(url.replace("http", "ws", 1) + "/v1/ws") as socket:
            subscriber = Subscriber(socket, channel)
            socket.send(json.dumps({"action": "subscribe", "channels": [channel]}))
            assert subscriber.receive()["payload"] == {"action": "subscribe", "channels": [channel]}
            snapshot = subscriber.receive()["payload"]
            assert snapshot["event"] == "orderbook.snapshot" and snapshot["market_id"] == market_id
            assert (snapshot["bids"], snapshot["asks"]) == ([], [level(100_000, 5_000, 1)])

            # placed by a wallet (the indexer is not running: the API relays its own outbox rows)
            _, bid = wallet_bid(
                client,
                market["buyer"],
                market["wallet"],
                side="buy",
                delivery_start=market["period"],
                quantity_wh=3_000,
                price=120_000,
            )
            assert bid.status_code == 202, bid.text
            placed = subscriber.next_delta()
            assert (placed["bids"], placed["asks"]) == ([level(120_000, 3_000, 1)], [])

            # placed, then cancelled by its custodial maker
            second = offer(1_000, 110_000)
            assert subscriber.next_delta()["asks"] == [level(110_000, 1_000, 1)]
            assert client.delete(f"/v1/trading/orders/{second}", headers=seller).status_code == 202
            cancelled = subscriber.next_delta()
            assert (cancelled["bids"], cancelled["asks"]) == ([], [level(110_000, 0, 0)])

            # filled on chain by the matcher; the indexer mirrors the trade and the cancel
            assert len(match(api)) == 1
            catch_up(market["indexer"])
            assert (
                OutboxPublisher(api.engine, RedisStreamSink(TEST_REDIS_URL)).publish_pending() >= 2
            )
            while True:
                filled = subscriber.next_delta()
                if filled["bids"]:  # the indexer's on-chain cancel may come first: 110,000 again
                    break
                assert filled["asks"] == [level(110_000, 0, 0)]
            assert filled["bids"] == [level(120_000, 0, 0)]
            assert filled["asks"] == [level(100_000, 2_000, 1)]

            served = client.get(
                "/v1/trading/orderbook", params={"market_id": market_id, "depth": 200}
            ).json()
            assert subscriber.levels() == {"bids": served["bids"], "asks": served["asks"]}
            assert served["asks"] == [level(100_000, 2_000, 1)] and served["bids"] == []
            assert subscriber.sequences == list(range(1, len(subscriber.sequences) + 1))  # no gap

            # subscribing again is how a client re-synchronises: a fresh snapshot, numbered on
            socket.send(json.dumps({"action": "subscribe", "channels": [channel]}))
            subscriber.receive()
            again = subscriber.receive()["payload"]
            assert (
                again["event"] == "orderbook.snapshot"
                and again["sequence"] == subscriber.sequences[-2] + 1
            )
            assert (again["bids"], again["asks"]) == (served["bids"], served["asks"])
    finally:
        other_engine.dispose()

"""`/v1/ws`: real-time channels fed from the outbox (the Redis stream when Redis is configured,
else the `outbox` table, polled every half second) that the indexer and the API write.

Client → server: `{"action": "subscribe" | "unsubscribe", "channels": [...]}`.
Server → client: `{"channel", "timestamp", "payload"}`; channels are `trades`,
`settlements`, `recs` and `trading.market.<market id>`: that market's trades and its order
book — an `orderbook.snapshot` right after each subscribe, then an `orderbook.delta` with the
new absolute state of every price level that changed (`quantity_wh` "0": gone) when an order
is placed, cancelled or filled. Both carry a `sequence` per market; a jump means a delta was
lost: subscribe again for a fresh snapshot (see backend/market/book_feed.py).
Acknowledgements and errors come on the `system` channel.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import anyio
import redis.asyncio as aioredis
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from sqlmodel import Session

from backend.api.deps import SessionDep, SettingsDep
from backend.api.outbox_tail import OutboxTail, stream_batches
from backend.chain.contracts import chain_for
from backend.core.errors import GridLedgerError
from backend.market.book_feed import BookFeed
from backend.market.trades import public_trade
from indexer.models import Trade

router = APIRouter(tags=["realtime"])

CHANNEL = re.compile(r"^(trades|settlements|recs|trading\.market\.(energy|rec)-[0-9]{1,18})$")
MAX_CHANNELS = 100


Json = dict[str, Any]  # a JSON object as decoded from the outbox or sent to the client


def envelope(channel: str, payload: Json) -> Json:
    return {"channel": channel, "timestamp": int(time.time() * 1000), "payload": payload}


def route_message(session: Session, topic: str, payload: Json) -> list[tuple[str, Json]]:
    """(channel, payload) pairs for one outbox message."""
    if topic.startswith("certificate."):
        return [("recs", {"event": topic, **payload})]
    if topic.startswith("trade."):
        session.rollback()  # a fresh snapshot: the indexer committed after our last read
        trade = session.get(Trade, payload["trade_id"])
        body = {"event": topic, **payload}
        if trade is not None:
            body["trade"] = public_trade(trade).model_dump(mode="json")
        if topic == "trade.created":
            routed = [("trades", body)]
            if trade is not None:
                routed.append((f"trading.market.{body['trade']['market_id']}", body))
            return routed
        return [("settlements", body)]
    return []


@router.websocket("/ws")
async def websocket(ws: WebSocket, session: SessionDep, settings: SettingsDep) -> None:
    await ws.accept()
    subscribed: set[str] = set()
    book = BookFeed(lambda: chain_for(settings).now(max_age_s=1.0))
    lock = anyio.Lock()  # one database read and send at a time: snapshots never overtake deltas

    def routed(topic: str, payload: Json) -> list[tuple[str, Json]]:
        return route_message(session, topic, payload) + book.on_message(session, topic, payload)

    async def deliver(topic: str, payload: Json) -> None:
        async with lock:
            for channel, body in await anyio.to_thread.run_sync(routed, topic, payload):
                if channel in subscribed:
                    await ws.send_json(envelope(channel, body))

    client = aioredis.from_url(settings.redis_url) if settings.redis_url else None

    async def pump_stream(client: aioredis.Redis) -> None:
        async for entries in stream_batches(
            client, settings.outbox_stream, block_ms=500, count=100
        ):
            for _, fields in entries:
                await deliver(fields[b"topic"].decode(), json.loads(fields[b"payload"]))

    async def pump_table() -> None:
        def read(tail: OutboxTail) -> list[tuple[int, str, Json]]:
            session.rollback()
            return tail.read(session)

        async with lock:
            tail = await anyio.to_thread.run_sync(lambda: OutboxTail.at_end(session))
        while True:
            async with lock:
                rows = await anyio.to_thread.run_sync(read, tail)
            for _, topic, payload in rows:
                await deliver(topic, payload)
            await anyio.sleep(0.5)

    async def snapshot(channel: str) -> None:
        market_id = channel.removeprefix("trading.market.")
        try:
            body = await anyio.to_thread.run_sync(book.follow, session, market_id)
        except GridLedgerError as exc:
            await ws.send_json(
                envelope(
                    "system",
                    {"error": "order book unavailable", "channel": channel, "detail": exc.detail},
                )
            )
            return
        await ws.send_json(envelope(channel, body))

    async def handle(message: object) -> None:
        action = message.get("action") if isinstance(message, dict) else None
        channels = message.get("channels") if isinstance(message, dict) else None
        if action not in ("subscribe", "unsubscribe") or not isinstance(channels, list):
            await ws.send_json(envelope("system", {"error": "expected {action, channels}"}))
            return
        bad = [c for c in channels if not isinstance(c, str) or not CHANNEL.match(c)]
        if bad:
            await ws.send_json(
                envelope("system", {"error": "unknown channels", "channels": bad[:10]})
            )
            return
        if action == "subscribe" and len(subscribed | set(channels)) > MAX_CHANNELS:
            await ws.send_json(envelope("system", {"error": f"at most {MAX_CHANNELS} channels"}))
            return
        if action == "subscribe":
            subscribed.update(channels)
        else:
            subscribed.difference_update(channels)
            for channel in channels:
                book.unfollow(channel.removeprefix("trading.market."))
        await ws.send_json(envelope("system", {"action": action, "channels": sorted(subscribed)}))
        if action == "subscribe":
            for channel in dict.fromkeys(c for c in channels if c.startswith("trading.market.")):
                await snapshot(channel)

    async def listen(cancel: anyio.CancelScope) -> None:
        try:
            while True:
                try:
                    message = await ws.receive_json()
                except (ValueError, json.JSONDecodeError):
                    await ws.send_json(
                        envelope("system", {"error": "messages must be JSON objects"})
                    )
                    continue
                async with lock:
                    await handle(message)
        except WebSocketDisconnect:
            pass
        cancel.cancel()

    try:
        async with anyio.create_task_group() as group:
            if client is not None:
                group.start_soon(pump_stream, client)
            else:
                group.start_soon(pump_table)
            group.start_soon(listen, group.cancel_scope)
    finally:
        if client is not None:
            await client.aclose()

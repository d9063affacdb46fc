"""`/v1/ws`: real-time channels fed from the indexer's outbox (the Redis stream when Redis is
configured, else the `outbox` table, polled every half second).

Client → server: `{"action": "subscribe" | "unsubscribe", "channels": [...]}`.
Server → client: `{"channel", "timestamp", "payload"}`; channels are `trades`,
`settlements`, `recs` and `trading.market.<market id>` (trades of that market).
Acknowledgements and errors come on the `system` channel.
"""
from __future__ import annotations

import json
import re
import time

import anyio
import redis.asyncio as aioredis
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from sqlalchemy import func, select
from sqlmodel import Session

from backend.api.deps import SessionDep, SettingsDep
from backend.market.services import public_trade
from indexer.models import OutboxMessage, Trade

router = APIRouter(tags=["realtime"])

CHANNEL = re.compile(r"^(trades|settlements|recs|trading\.market\.(energy|rec)-[0-9]{1,18})$")
MAX_CHANNELS = 100


def envelope(channel: str, payload: dict) -> dict:
    return {"channel": channel, "timestamp": int(time.time() * 1000), "payload": payload}


def route_message(session: Session, topic: str, payload: dict) -> list[tuple[str, dict]]:
    """(channel, payload) pairs for one outbox message."""
    if topic.startswith("certificate."):
        return [("recs", {"event": topic, **payload})]
    if topic.startswith("trade."):
        session.rollback()  # a fresh snapshot: the indexer committed after our last read
        trade = session.get(Trade, payload["trade_id"])
        body = {"event": topic, **payload}
        if trade is not None:
            body["trade"] = public_trade(trade).model_dump()
        if topic == "trade.created":
            routed = [("trades", body)]
            if trade is not None:
                routed.append((f"trading.market.{body['trade']['market_id']}", body))
            return routed
        return [("settlements", body)]
    return []


@router.websocket("/ws")
async def websocket(ws: WebSocket, session: SessionDep, settings: SettingsDep):
    await ws.accept()
    subscribed: set[str] = set()

    async def deliver(topic: str, payload: dict) -> None:
        for channel, body in route_message(session, topic, payload):
            if channel in subscribed:
                await ws.send_json(envelope(channel, body))

    client = aioredis.from_url(settings.redis_url) if settings.redis_url else None

    async def pump_stream():
        stream = settings.outbox_stream
        latest = await client.xrevrange(stream, count=1)
        last_id = latest[0][0] if latest else b"0-0"
        while True:
            batches = await client.xread({stream: last_id}, block=500, count=100)
            for _, entries in batches or []:
                for entry_id, fields in entries:
                    last_id = entry_id
                    await deliver(fields[b"topic"].decode(), json.loads(fields[b"payload"]))

    async def pump_table():
        outbox = OutboxMessage.__table__

        def newer_than(last: int):
            session.rollback()
            return session.execute(
                select(outbox.c.id, outbox.c.topic, outbox.c.payload)
                .where(outbox.c.id > last).order_by(outbox.c.id).limit(100)
            ).all()

        last_id = await anyio.to_thread.run_sync(
            lambda: session.execute(select(func.coalesce(func.max(outbox.c.id), 0))).scalar_one()
        )
        while True:
            for message_id, topic, payload in await anyio.to_thread.run_sync(newer_than, last_id):
                last_id = message_id
                await deliver(topic, payload)
            await anyio.sleep(0.5)

    async def listen(cancel: anyio.CancelScope):
        try:
            while True:
                try:
                    message = await ws.receive_json()
                except (ValueError, json.JSONDecodeError):
                    await ws.send_json(envelope("system", {"error": "messages must be JSON objects"}))
                    continue
                action = message.get("action") if isinstance(message, dict) else None
                channels = message.get("channels") if isinstance(message, dict) else None
                if action not in ("subscribe", "unsubscribe") or not isinstance(channels, list):
                    await ws.send_json(envelope("system", {"error": "expected {action, channels}"}))
                    continue
                bad = [c for c in channels if not isinstance(c, str) or not CHANNEL.match(c)]
                if bad:
                    await ws.send_json(envelope("system", {"error": "unknown channels", "channels": bad[:10]}))
                    continue
                if action == "subscribe":
                    subscribed.update(channels)
                    if len(subscribed) > MAX_CHANNELS:
                        subscribed.difference_update(channels)
                        await ws.send_json(envelope("system", {"error": f"at most {MAX_CHANNELS} channels"}))
                        continue
                else:
                    subscribed.difference_update(channels)
                await ws.send_json(envelope("system", {"action": action, "channels": sorted(subscribed)}))
        except WebSocketDisconnect:
            pass
        cancel.cancel()

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(pump_stream if client is not None else pump_table)
            group.start_soon(listen, group.cancel_scope)
    finally:
        if client is not None:
            await client.aclose()

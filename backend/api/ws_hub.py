"""The fan-out behind `/v1/ws`: one per API process, however many sockets are open.

One pump reads the outbox (the Redis stream, or the `outbox` table without Redis) and each
message once; it reads the database only for channels someone subscribed to, once per message
(not once per socket), each read in its own short session: no socket holds a pooled
connection. Messages go to the subscribed sockets' queues; each socket's writer drains its own,
so a slow client delays nobody else, and one that falls `max_queue` messages behind is closed
(1013, try again later). The pump runs while at least one socket is open.

Ordering: a subscribe takes its snapshot and an outbox message is routed under one lock, so a
snapshot never overtakes a delta computed before it (see backend/market/book_feed.py).
Each address may hold `ws_max_connections_per_ip` sockets at once (`admit`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
import weakref
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from functools import partial
from typing import Any

import anyio
import redis.asyncio as aioredis
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from backend.api.outbox_tail import OutboxTail
from backend.core.config import Settings
from backend.core.errors import GridLedgerError
from backend.market.book_feed import (
    BOOK_TOPICS,
    BookFeed,
    States,
    book_changes,
    channel_of,
    snapshot_body,
)
from backend.market.trades import public_trade
from backend.resources.telemetry import TELEMETRY_TOPIC
from backend.vpp import live
from indexer.models import Trade

log = logging.getLogger("gridledger.api")

CHANNEL = re.compile(
    rf"^(trades|settlements|recs|trading\.market\.(energy|rec)-[0-9]{{1,18}}|{live.CHANNEL})$"
)
MARKET_PREFIX = "trading.market."
MAX_CHANNELS = 100

Json = dict[str, Any]  # a JSON object as decoded from the outbox or sent to the client
Sessions = Callable[[], AbstractContextManager[Session]]  # a short session per read


def envelope(channel: str, payload: Json) -> Json:
    return {"channel": channel, "timestamp": int(time.time() * 1000), "payload": payload}


def route_message(
    session: Session, topic: str, payload: Json, wanted: set[str]
) -> list[tuple[str, Json]]:
    """(channel, payload) pairs for one `trade.*` outbox message, among the `wanted` channels
    only (no read when none of them can receive it). Order-book deltas are `book_changes`',
    certificates need no read (`WsHub.deliver`)."""
    if not topic.startswith("trade."):
        return []
    markets = any(channel.startswith(MARKET_PREFIX) for channel in wanted)
    target = "trades" if topic == "trade.created" else "settlements"
    if target not in wanted and not (topic == "trade.created" and markets):
        return []
    trade = session.get(Trade, payload["trade_id"])
    body = {"event": topic, **payload}
    if trade is not None:
        body["trade"] = public_trade(trade).model_dump(mode="json")
    routed = [(target, body)]
    if topic == "trade.created" and trade is not None:
        routed.append((f"{MARKET_PREFIX}{body['trade']['market_id']}", body))
    return [(channel, message) for channel, message in routed if channel in wanted]


class Subscriber:
    """One socket: its channels, its order-book sequence numbers and its outgoing queue."""

    def __init__(
        self, address: str, book: BookFeed, max_queue: int, account_id: uuid.UUID | None = None
    ) -> None:
        self.address = address
        self.account_id = account_id  # who the socket authenticated as (None: anonymous)
        self.book = book
        self.channels: set[str] = set()
        self.max_queue = max_queue
        self.queue: asyncio.Queue[Json | None] = asyncio.Queue()  # None: close, it fell behind
        self.overflowed = False

    def push(self, message: Json) -> None:
        if self.overflowed:
            return
        if self.queue.qsize() >= self.max_queue:
            self.overflowed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(message)

    async def outgoing(self) -> AsyncIterator[Json]:
        """The messages to send, in order, until the socket fell behind."""
        while (message := await self.queue.get()) is not None:
            yield message


class WsHub:
    """The process's fan-out (see the module docstring). Not thread-safe: one event loop."""

    def __init__(self, settings: Settings, sessions: Sessions, now: Callable[[], int]) -> None:
        self.settings = settings
        self.sessions = sessions
        self.now = now  # chain time, for expiry and gate closure in order books
        self.subscribers: set[Subscriber] = set()
        self.by_channel: dict[str, set[Subscriber]] = defaultdict(set)
        self.per_address: Counter[str] = Counter()
        self.lock = asyncio.Lock()
        self.ready = asyncio.Event()
        self.pump: asyncio.Task[None] | None = None
        self.reads = 0  # database reads for routing and snapshots (tests assert on it)

    # ------------------------------------------------------------------ connections

    def admit(self, address: str) -> bool:
        """Count a new socket from `address`; False when the address is at its cap."""
        if self.per_address[address] >= self.settings.ws_max_connections_per_ip:
            return False
        self.per_address[address] += 1
        return True

    def release(self, address: str) -> None:
        self.per_address[address] -= 1
        if self.per_address[address] <= 0:
            del self.per_address[address]

    async def join(self, address: str, account_id: uuid.UUID | None = None) -> Subscriber:
        """A subscriber with no channels yet; starts the pump for the first one and waits until
        it knows where the outbox ends (a message published after this returns is delivered)."""
        subscriber = Subscriber(address, BookFeed(self.now), self.settings.ws_max_queue, account_id)
        self.subscribers.add(subscriber)
        if self.pump is None:
            self.ready.clear()
            self.pump = asyncio.create_task(self._run())
        await self.ready.wait()
        return subscriber

    async def leave(self, subscriber: Subscriber) -> None:
        async with self.lock:
            self._drop(subscriber, set(subscriber.channels))
            self.subscribers.discard(subscriber)
        if not self.subscribers and self.pump is not None:
            pump, self.pump = self.pump, None
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)

    # ------------------------------------------------------------------ subscriptions

    async def handle(self, subscriber: Subscriber, message: object) -> None:
        """A client message: `{"action": "subscribe" | "unsubscribe", "channels": [...]}`."""
        action = message.get("action") if isinstance(message, dict) else None
        channels = message.get("channels") if isinstance(message, dict) else None
        if action not in ("subscribe", "unsubscribe") or not isinstance(channels, list):
            subscriber.push(envelope("system", {"error": "expected {action, channels}"}))
            return
        bad = [c for c in channels if not isinstance(c, str) or not CHANNEL.match(c)]
        if bad:
            subscriber.push(envelope("system", {"error": "unknown channels", "channels": bad[:10]}))
            return
        if action == "subscribe" and len(subscriber.channels | set(channels)) > MAX_CHANNELS:
            subscriber.push(envelope("system", {"error": f"at most {MAX_CHANNELS} channels"}))
            return
        if action == "subscribe":
            channels = await self._authorised(subscriber, channels)
        async with self.lock:
            if action == "unsubscribe":
                self._drop(subscriber, set(channels))
            else:
                subscriber.channels.update(channels)
                for channel in channels:
                    self.by_channel[channel].add(subscriber)
            subscriber.push(
                envelope("system", {"action": action, "channels": sorted(subscriber.channels)})
            )
            if action == "subscribe":
                for channel in dict.fromkeys(c for c in channels if c.startswith(MARKET_PREFIX)):
                    await self._snapshot(subscriber, channel)

    async def _authorised(self, subscriber: Subscriber, channels: list[str]) -> list[str]:
        """The channels the socket may follow; a `vpp.<id>.status` only for the VPP's
        aggregator and its members' owners (refusals named on the `system` channel)."""
        vpps = {c: live.vpp_of(c) for c in channels if live.vpp_of(c) is not None}
        if not vpps:
            return channels
        account = subscriber.account_id

        def read(session: Session) -> set[str]:
            return {c for c, v in vpps.items() if v and live.may_follow(session, account, v)}

        try:
            allowed = await self._read(read)
        except SQLAlchemyError:
            allowed = set()
        refused = sorted(set(vpps) - allowed)
        if refused:
            reason = "sign in first" if account is None else "not your VPP"
            subscriber.push(
                envelope("system", {"error": "forbidden", "detail": reason, "channels": refused})
            )
        return [c for c in channels if c not in refused]

    def _drop(self, subscriber: Subscriber, channels: set[str]) -> None:
        for channel in channels & subscriber.channels:
            self.by_channel[channel].discard(subscriber)
            if not self.by_channel[channel]:
                del self.by_channel[channel]
            if channel.startswith(MARKET_PREFIX):
                subscriber.book.unfollow(channel.removeprefix(MARKET_PREFIX))
        subscriber.channels -= channels

    async def _snapshot(self, subscriber: Subscriber, channel: str) -> None:
        market_id = channel.removeprefix(MARKET_PREFIX)
        try:
            body = await self._read(partial(self._snapshot_of, market_id))
        except (GridLedgerError, SQLAlchemyError) as exc:
            detail = exc.detail if isinstance(exc, GridLedgerError) else "database unavailable"
            subscriber.push(
                envelope(
                    "system",
                    {"error": "order book unavailable", "channel": channel, "detail": detail},
                )
            )
            return
        subscriber.push(envelope(channel, subscriber.book.stamp(body)))

    def _snapshot_of(self, market_id: str, session: Session) -> Json:
        return snapshot_body(session, market_id, self.now())

    async def _read(self, read: Callable[[Session], Any]) -> Any:
        """One read in its own short session, in a worker thread."""

        def run() -> Any:
            with self.sessions() as session:
                return read(session)

        self.reads += 1
        return await anyio.to_thread.run_sync(run)

    # ------------------------------------------------------------------ the pump

    async def deliver(self, topic: str, payload: Json) -> None:
        """Route one outbox message to the sockets subscribed to its channels."""
        async with self.lock:
            wanted = set(self.by_channel)
            if not wanted:
                return
            followed = {
                c.removeprefix(MARKET_PREFIX) for c in wanted if c.startswith(MARKET_PREFIX)
            }
            if topic == "chain.reorg":  # fills may have vanished: every followed book starts over
                await self._resnapshot(followed)
                return
            if topic == TELEMETRY_TOPIC:
                await self._telemetry(payload, wanted)
                return
            if topic.startswith("certificate."):  # the payload is the message: no read
                for subscriber in self.by_channel.get("recs", ()):
                    subscriber.push(envelope("recs", {"event": topic, **payload}))
                return
            book = bool(followed) and topic in BOOK_TOPICS
            plain = topic.startswith("trade.")
            if not (book or plain):
                return

            def read(session: Session) -> tuple[list[tuple[str, Json]], dict[str, States | None]]:
                routed = route_message(session, topic, payload, wanted) if plain else []
                changes = book_changes(session, topic, payload, followed, self.now) if book else {}
                return routed, changes

            if not plain and payload.get("market_id") not in (None, *followed):
                return  # an order message naming a market nobody follows: no read
            try:
                routed, changes = await self._read(read)
            except (GridLedgerError, SQLAlchemyError) as exc:
                log.warning("WebSocket message %s not routed: %s", topic, exc)
                routed, changes = [], dict.fromkeys(followed)
            for channel, body in routed:
                for subscriber in self.by_channel.get(channel, ()):
                    subscriber.push(envelope(channel, body))
            for market_id in changes:
                for subscriber in self.by_channel.get(channel_of(market_id), ()):
                    for channel, delta in subscriber.book.deltas({market_id: changes[market_id]}):
                        subscriber.push(envelope(channel, delta))

    async def _telemetry(self, payload: Json, wanted: set[str]) -> None:
        """DER telemetry to the live channels (backend/vpp/live.py): one read, if any."""
        followed = {c for c in wanted if c in (live.CONSUMPTION, live.SOLAR) or live.vpp_of(c)}
        if not followed:
            return
        try:
            updates = await self._read(partial(_telemetry_updates, payload, followed))
        except (GridLedgerError, SQLAlchemyError, ValueError) as exc:
            log.warning("telemetry update not routed: %s", exc)
            return
        for channel, body in updates:
            for subscriber in self.by_channel.get(channel, ()):
                subscriber.push(envelope(channel, body))

    async def _resnapshot(self, followed: set[str]) -> None:
        for market_id in followed:
            channel = channel_of(market_id)
            try:
                body = await self._read(partial(self._snapshot_of, market_id))
            except (GridLedgerError, SQLAlchemyError) as exc:
                log.warning("order book snapshot of %s skipped: %s", market_id, exc)
                for subscriber in self.by_channel.get(channel, ()):
                    subscriber.book.deltas({market_id: None})  # burns a number: a visible gap
                continue
            for subscriber in self.by_channel.get(channel, ()):
                subscriber.push(envelope(channel, subscriber.book.stamp(body)))

    async def _run(self) -> None:
        """Read the outbox and deliver, until cancelled; outages are waited out."""
        delay = 0.25
        while True:
            try:
                if self.settings.redis_url:
                    await self._pump_stream()
                else:
                    await self._pump_table()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("WebSocket feed unavailable (%s); retrying in %.1f s", exc, delay)
                self.ready.set()  # sockets may still subscribe; messages resume with the feed
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _pump_stream(self) -> None:
        client = aioredis.from_url(self.settings.redis_url)
        stream = self.settings.outbox_stream
        try:
            latest = await client.xrevrange(stream, count=1)
            last_id = latest[0][0] if latest else b"0-0"
            self.ready.set()
            while True:
                for _, entries in await client.xread({stream: last_id}, block=500, count=100) or []:
                    for entry_id, fields in entries:
                        last_id = entry_id
                        await self.deliver(
                            fields[b"topic"].decode(), json.loads(fields[b"payload"])
                        )
        finally:
            await client.aclose()

    async def _pump_table(self) -> None:
        tail = await anyio.to_thread.run_sync(self._tail_at_end)
        self.ready.set()
        while True:
            rows = await anyio.to_thread.run_sync(self._tail_read, tail)
            for _, topic, payload in rows:
                await self.deliver(topic, payload)
            await asyncio.sleep(0.5)

    def _tail_at_end(self) -> OutboxTail:
        with self.sessions() as session:
            return OutboxTail.at_end(session)

    def _tail_read(self, tail: OutboxTail) -> list[tuple[int, str, Json]]:
        with self.sessions() as session:
            return tail.read(session)


def _telemetry_updates(payload: Json, wanted: set[str], session: Session) -> list[tuple[str, Json]]:
    return live.telemetry_updates(session, payload, wanted)


def hub_for(state: object, settings: Settings, sessions: Sessions, now: Callable[[], int]) -> WsHub:
    """The fan-out kept in the app's `state` for the running event loop (uvicorn: one per
    process; a test client may run sockets in several loops)."""
    hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WsHub] | None = getattr(
        state, "ws_hubs", None
    )
    if hubs is None:
        hubs = weakref.WeakKeyDictionary()
        setattr(state, "ws_hubs", hubs)  # noqa: B010 (Starlette's State takes attributes)
    loop = asyncio.get_running_loop()
    hub = hubs.get(loop)
    if hub is None:
        hub = hubs[loop] = WsHub(settings, sessions, now)
    return hub

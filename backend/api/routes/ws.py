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

Live DER channels (backend/vpp/live.py): `vpp.<vppId>.status`, `consumption.real-time`,
`generation.solar`. `vpp.<id>.status` needs an authenticated socket of the VPP's aggregator or
a member's owner: send `Authorization: Bearer <token>` or `X-API-Key` with the upgrade, or
(browsers) `{"action": "authenticate", "token": "<access token>"}` / `{"action":
"authenticate", "apiKey": "<key>"}` as a message; the API key needs the `read` scope.

One fan-out per process serves every socket (backend/api/ws_hub.py). An address over
`ws_max_connections_per_ip` open sockets is refused: HTTP 429 on the upgrade where the server
supports denial responses, else close code 1013 (try again later); a socket that falls
`ws_max_queue` messages behind is closed with 1013.
"""

from __future__ import annotations

import json
import uuid
from contextlib import contextmanager

import anyio
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from backend.accounts.models import Scope
from backend.api.deps import SettingsDep, authenticate, get_db
from backend.api.problems import problem_of
from backend.api.ws_hub import Subscriber, WsHub, envelope, hub_for
from backend.chain.contracts import chain_for
from backend.core.config import Settings
from backend.core.errors import GridLedgerError, RateLimited
from backend.core.kv import store_for

router = APIRouter(tags=["realtime"])

TRY_AGAIN_LATER = 1013  # RFC 6455 registry: the server is overloaded


def _hub(ws: WebSocket, settings: SettingsDep) -> WsHub:
    app = ws.scope["app"]
    sessions = contextmanager(app.dependency_overrides.get(get_db, get_db))
    return hub_for(app.state, settings, sessions, lambda: chain_for(settings).now(max_age_s=1.0))


async def _refuse(ws: WebSocket, limit: int) -> None:
    refusal = RateLimited(f"more than {limit} open WebSockets from this address", retry_after=5)
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(problem_of(refusal, instance=ws.url.path))
        return
    await ws.accept()
    await ws.close(code=TRY_AGAIN_LATER, reason=refusal.detail)


@router.websocket("/ws")
async def websocket(ws: WebSocket, settings: SettingsDep) -> None:
    hub = _hub(ws, settings)
    address = ws.client.host if ws.client else ""
    if not hub.admit(address):
        await _refuse(ws, settings.ws_max_connections_per_ip)
        return
    try:
        account_id = None
        if ws.headers.get("authorization") or ws.headers.get("x-api-key"):
            account_id = await _account_of(
                ws, settings, ws.headers.get("authorization"), ws.headers.get("x-api-key")
            )
        await ws.accept()
        subscriber = await hub.join(address, account_id)
        try:
            await _serve(ws, hub, subscriber, settings)
        finally:
            await hub.leave(subscriber)
    finally:
        hub.release(address)


async def _account_of(
    ws: WebSocket, settings: Settings, authorization: str | None, api_key: str | None
) -> uuid.UUID | None:
    """The account the credentials name (an API key needs the read scope); None otherwise."""
    app = ws.scope["app"]
    sessions = contextmanager(app.dependency_overrides.get(get_db, get_db))

    def resolve() -> uuid.UUID | None:
        with sessions() as session:
            try:
                account, key = authenticate(
                    session, settings, store_for(settings), authorization, api_key
                )
            except GridLedgerError:
                return None
            if key is not None and Scope.READ.value not in key.scopes:
                return None
            return account.id

    return await anyio.to_thread.run_sync(resolve)


async def _sign_in(
    ws: WebSocket, settings: Settings, subscriber: Subscriber, message: dict
) -> None:
    token, key = message.get("token"), message.get("apiKey")
    account_id = None
    if isinstance(token, str) or isinstance(key, str):
        account_id = await _account_of(
            ws,
            settings,
            f"Bearer {token}" if isinstance(token, str) else None,
            key if isinstance(key, str) else None,
        )
    if account_id is None:
        subscriber.push(envelope("system", {"error": "authentication failed"}))
        return
    subscriber.account_id = account_id
    subscriber.push(envelope("system", {"action": "authenticate", "accountId": str(account_id)}))


async def _serve(ws: WebSocket, hub: WsHub, subscriber: Subscriber, settings: Settings) -> None:
    async def listen(cancel: anyio.CancelScope) -> None:
        try:
            while True:
                try:
                    message = await ws.receive_json()
                except (ValueError, json.JSONDecodeError):
                    subscriber.push(envelope("system", {"error": "messages must be JSON objects"}))
                    continue
                if isinstance(message, dict) and message.get("action") == "authenticate":
                    await _sign_in(ws, settings, subscriber, message)
                    continue
                await hub.handle(subscriber, message)
        except WebSocketDisconnect:
            pass
        cancel.cancel()

    async def write(cancel: anyio.CancelScope) -> None:
        try:
            async for message in subscriber.outgoing():
                await ws.send_json(message)
            await ws.close(code=TRY_AGAIN_LATER, reason="too slow: messages were piling up")
        except WebSocketDisconnect:
            pass
        cancel.cancel()

    async with anyio.create_task_group() as group:
        group.start_soon(listen, group.cancel_scope)
        group.start_soon(write, group.cancel_scope)

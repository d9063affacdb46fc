"""The public read cache (backend/api/read_cache.py): what it serves, when it recomputes, and
that it only ever holds anonymous routes."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.api.read_cache import ReadCache, ReadCacheMiddleware
from backend.api.routes import CACHED_PUBLIC_READS
from backend.core.config import Settings
from backend.main import create_app
from indexer.models import OutboxMessage
from tests.fixtures.app import app_on
from tests.fixtures.trades import a_trade


class CountingApp:
    """An ASGI app that answers `/book` with how often it ran (slowly), `/missing` with a
    404, and records writes."""

    def __init__(self, delay_s: float = 0.0):
        self.calls = 0
        self.delay_s = delay_s
        self.write_status = 202

    async def __call__(self, scope, receive, send):
        if scope["method"] == "GET":
            self.calls += 1
            calls = self.calls
            await asyncio.sleep(self.delay_s)
            status = 404 if scope["path"] == "/missing" else 200
            body = json.dumps({"calls": calls, "query": scope["query_string"].decode()}).encode()
        else:
            status, body = self.write_status, b"{}"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(body)),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def anyio_backend():
    return "asyncio"


def harness(ttl_s: float = 60.0, delay_s: float = 0.0, max_bytes: int = 2**20):
    app = CountingApp(delay_s)
    cache = ReadCache(["/book", "/missing", "/v1/orders"], ttl_s=ttl_s, max_bytes=max_bytes)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(ReadCacheMiddleware(app, cache)), base_url="http://t"
    )
    return app, cache, client


@pytest.mark.anyio
async def test_hits_skip_the_app_until_invalidated():
    app, cache, client = harness()
    async with client:
        first = await client.get("/book?x=1")
        again = await client.get("/book?x=1")
        other_query = await client.get("/book?x=2")
        assert first.json() == again.json() == {"calls": 1, "query": "x=1"}
        assert other_query.json()["calls"] == 2
        assert app.calls == 2 and cache.hits == 1
        assert again.headers["etag"] == first.headers["etag"]
        assert again.headers["cache-control"] == "public, max-age=60"
        assert int(again.headers["content-length"]) == len(again.content)
        cache.invalidate()
        assert (await client.get("/book?x=1")).json()["calls"] == 3


@pytest.mark.anyio
async def test_ttl_bounds_the_age():
    _app, _cache, client = harness(ttl_s=0.05)
    async with client:
        assert (await client.get("/book")).json()["calls"] == 1
        assert (await client.get("/book")).json()["calls"] == 1
        await asyncio.sleep(0.06)
        assert (await client.get("/book")).json()["calls"] == 2


@pytest.mark.anyio
async def test_concurrent_misses_run_the_route_once():
    app, _cache, client = harness(delay_s=0.05)
    async with client:
        replies = await asyncio.gather(*(client.get("/book") for _ in range(20)))
    assert {r.json()["calls"] for r in replies} == {1}
    assert app.calls == 1


@pytest.mark.anyio
async def test_after_a_change_waiters_get_the_new_answer_but_after_expiry_the_old_one():
    _app, cache, client = harness(ttl_s=0.05, delay_s=0.05)
    async with client:
        await client.get("/book")
        await asyncio.sleep(0.06)  # expired, same generation: others get the old answer meanwhile
        leader = asyncio.create_task(client.get("/book"))
        await asyncio.sleep(0.01)
        assert (await client.get("/book")).json()["calls"] == 1
        assert (await leader).json()["calls"] == 2
        cache.invalidate()  # the market changed: nobody may see the old answer
        leader = asyncio.create_task(client.get("/book"))
        await asyncio.sleep(0.01)
        assert (await client.get("/book")).json()["calls"] == 3
        assert (await leader).json()["calls"] == 3


@pytest.mark.anyio
async def test_errors_are_not_kept():
    app, cache, client = harness()
    async with client:
        assert (await client.get("/missing")).status_code == 404
        assert (await client.get("/missing")).status_code == 404
    assert app.calls == 2 and not cache.entries


@pytest.mark.anyio
async def test_if_none_match_gets_304():
    _app, cache, client = harness()
    async with client:
        etag = (await client.get("/book")).headers["etag"]
        reply = await client.get("/book", headers={"If-None-Match": etag})
        assert reply.status_code == 304 and reply.content == b"" and reply.headers["etag"] == etag
        cache.invalidate()
        assert (await client.get("/book", headers={"If-None-Match": etag})).status_code == 200


@pytest.mark.anyio
async def test_a_successful_write_invalidates_a_refused_one_does_not():
    app, _cache, client = harness()
    async with client:
        await client.get("/book")
        app.write_status = 422
        await client.post("/v1/orders", json={})
        assert (await client.get("/book")).json()["calls"] == 1
        app.write_status = 202
        await client.post("/v1/orders", json={})
        assert (await client.get("/book")).json()["calls"] == 2


@pytest.mark.anyio
async def test_size_is_bounded_oldest_first():
    _app, cache, client = harness(max_bytes=100)
    async with client:
        for i in range(10):
            await client.get(f"/book?i={i}")
    assert cache.size <= 100 and cache.size == sum(len(e.body) for e in cache.entries.values())
    assert ("/book", b"i=9") in cache.entries and ("/book", b"i=0") not in cache.entries


@pytest.mark.anyio
async def test_off_when_ttl_is_zero():
    app, cache, client = harness(ttl_s=0)
    async with client:
        await client.get("/book")
        await client.get("/book")
    assert app.calls == 2 and not cache.entries


def test_only_anonymous_gets_are_cached():
    """The key ignores credentials: a cached route that read the caller would leak. Routes
    that authenticate declare the `Authorization` / `X-API-Key` headers (backend/api/deps.py)."""
    paths = create_app().openapi()["paths"]
    for path in CACHED_PUBLIC_READS:
        assert "get" in paths.get(path, {}), f"{path} is not a GET route"
        headers = {
            p["name"].lower()
            for p in paths[path]["get"].get("parameters", [])
            if p["in"] == "header"
        }
        assert not headers & {"authorization", "x-api-key"}, f"{path} reads the caller"
    mine = paths["/v1/trading/orders"]["get"]["parameters"]
    assert "authorization" in {p["name"].lower() for p in mine}  # the check above can fail


def trade_ids_once_changed(client: TestClient, timeout_s: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while (
        not (items := client.get("/v1/trading/trades").json()["items"])
        and time.monotonic() < deadline
    ):
        time.sleep(0.02)
    return [t["trade_id"] for t in items]


def test_public_read_changes_once_the_outbox_says_so(
    client, api_settings, db_session, redis_client
):
    """Through the real app: with a TTL far away, only the change feed (the outbox stream in
    Redis) can make a new trade visible."""
    client.app.state.read_cache.ttl_s = 3_600
    assert client.get("/v1/trading/trades").json()["items"] == []
    db_session.add(a_trade(1))
    db_session.flush()
    time.sleep(0.3)
    assert client.get("/v1/trading/trades").json()["items"] == []  # still the cached answer
    redis_client.xadd(
        api_settings.outbox_stream,
        {
            "id": 1,
            "topic": "trade.created",
            "block_number": 1,
            "payload": json.dumps({"trade_id": 1}),
        },
    )
    assert trade_ids_once_changed(client) == [1]


@pytest.fixture
def embedded_client(tmp_path, fresh_pg_url):
    """The app without Redis: the change feed polls the outbox table."""
    settings = Settings(_env_file=None, data_dir=tmp_path, database_url=fresh_pg_url, redis_url="")
    app, engine = app_on(fresh_pg_url, settings)
    with TestClient(app) as test_client:
        yield test_client, engine
    engine.dispose()


def test_without_redis_the_outbox_table_is_the_feed(embedded_client):
    client, engine = embedded_client
    client.app.state.read_cache.ttl_s = 3_600
    assert client.get("/v1/trading/trades").json()["items"] == []
    with Session(engine) as session:
        session.add(a_trade(7))
        session.commit()
    time.sleep(0.4)
    assert client.get("/v1/trading/trades").json()["items"] == []
    with Session(engine) as session:
        session.add(
            OutboxMessage(
                chain_id=31337, topic="trade.created", block_number=1, payload={"trade_id": 7}
            )
        )
        session.commit()
    assert trade_ids_once_changed(client) == [7]

"""`Idempotency-Key` (backend/api/middleware.py) around a small app whose handlers count
their runs: a retry never runs a handler twice, whatever the store (Redis or in-process)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from backend.api.middleware import IdempotencyMiddleware
from backend.core.config import Settings, get_settings
from tests.fixtures.services import TEST_REDIS_URL


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(params=["redis", "in-process"])
def counted(request, redis_client, tmp_path):
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        redis_url=TEST_REDIS_URL if request.param == "redis" else "",
        idempotency_max_body_bytes=4096,
    )
    app = FastAPI()
    app.dependency_overrides[get_settings] = lambda: settings
    runs = {"echo": 0, "flaky": 0, "slow": 0}
    release = asyncio.Event()

    @app.post("/echo", status_code=201)
    async def echo(request: Request):
        runs["echo"] += 1
        return {"run": runs["echo"], "body": (await request.json())}

    @app.post("/flaky")
    async def flaky():
        runs["flaky"] += 1
        if runs["flaky"] == 1:
            return JSONResponse({"error": "transient"}, status_code=503)
        return PlainTextResponse(f"run {runs['flaky']}", status_code=202)

    @app.post("/slow")
    async def slow():
        runs["slow"] += 1
        await release.wait()
        return {"run": runs["slow"]}

    app.add_middleware(IdempotencyMiddleware)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t")
    return client, runs, release


def key() -> dict:
    return {"Idempotency-Key": str(uuid.uuid4())}


@pytest.mark.anyio
async def test_a_retry_replays_status_body_and_type(counted):
    client, runs, _ = counted
    headers = key()
    async with client:
        first = await client.post("/echo", json={"a": 1}, headers=headers)
        again = await client.post("/echo", json={"a": 1}, headers=headers)
        fresh = await client.post("/echo", json={"a": 1}, headers=key())
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() == {"run": 1, "body": {"a": 1}}
    assert (
        again.headers["idempotent-replayed"] == "true"
        and "idempotent-replayed" not in first.headers
    )
    assert again.headers["content-type"] == first.headers["content-type"] == "application/json"
    assert int(again.headers["content-length"]) == len(again.content)
    assert fresh.json()["run"] == 2 and runs["echo"] == 2


@pytest.mark.anyio
async def test_same_key_other_body_is_refused(counted):
    client, runs, _ = counted
    headers = key()
    async with client:
        await client.post("/echo", json={"a": 1}, headers=headers)
        other = await client.post("/echo", json={"a": 2}, headers=headers)
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")
    assert other.headers["content-type"] == "application/problem+json" and runs["echo"] == 1


@pytest.mark.anyio
async def test_server_errors_are_not_kept_so_the_retry_runs(counted):
    client, runs, _ = counted
    headers = key()
    async with client:
        failed = await client.post("/flaky", headers=headers)
        retried = await client.post("/flaky", headers=headers)
        replayed = await client.post("/flaky", headers=headers)
    assert failed.status_code == 503
    assert (
        retried.status_code == replayed.status_code == 202
        and retried.text == replayed.text == "run 2"
    )
    assert replayed.headers["content-type"].startswith("text/plain") and runs["flaky"] == 2


@pytest.mark.anyio
async def test_a_retry_while_the_first_runs_is_409(counted):
    client, runs, release = counted
    headers = key()
    async with client:
        first = asyncio.create_task(client.post("/slow", headers=headers))
        while runs["slow"] == 0:
            await asyncio.sleep(0.005)
        during = await client.post("/slow", headers=headers)
        release.set()
        done = await first
    assert during.status_code == 409 and during.json()["type"].endswith("/idempotency-in-progress")
    assert done.status_code == 200 and runs["slow"] == 1


@pytest.mark.anyio
async def test_bad_keys_and_unkeyed_posts(counted):
    client, _runs, _ = counted
    async with client:
        too_long = await client.post("/echo", json={}, headers={"Idempotency-Key": "k" * 256})
        unkeyed = [await client.post("/echo", json={}) for _ in range(2)]
    assert too_long.status_code == 422 and too_long.json()["type"].endswith(
        "/invalid-idempotency-key"
    )
    assert [r.json()["run"] for r in unkeyed] == [1, 2]  # no key: no protection, no interference


@pytest.mark.anyio
async def test_same_key_other_query_string_is_refused(counted):
    client, runs, _ = counted
    headers = key()
    async with client:
        await client.post("/echo?dry_run=true", json={"a": 1}, headers=headers)
        other = await client.post("/echo?dry_run=false", json={"a": 1}, headers=headers)
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")
    assert runs["echo"] == 1


@pytest.mark.anyio
async def test_an_oversized_body_is_refused_before_it_is_held(counted):
    client, runs, _ = counted
    async with client:
        big = await client.post("/echo", json={"x": "y" * 5_000}, headers=key())
        unkeyed = await client.post("/echo", json={"x": "y" * 5_000})
    assert big.status_code == 413 and big.json()["type"].endswith("/request-too-large")
    assert unkeyed.status_code == 201 and runs["echo"] == 1  # the limit is the middleware's


@pytest.mark.anyio
async def test_a_cancelled_request_frees_its_key(counted):
    client, runs, release = counted
    headers = key()
    async with client:
        first = asyncio.create_task(client.post("/slow", headers=headers))
        while runs["slow"] == 0:
            await asyncio.sleep(0.005)
        first.cancel()  # the client went away while the handler ran
        with pytest.raises(asyncio.CancelledError):
            await first
        release.set()
        retried = await client.post("/slow", headers=headers)
    assert retried.status_code == 200 and runs["slow"] == 2


@pytest.mark.anyio
async def test_stored_responses_are_sealed_and_pending_keys_expire_soon(redis_client, tmp_path):
    settings = Settings(
        _env_file=None, data_dir=tmp_path, redis_url=TEST_REDIS_URL, idempotency_pending_ttl_s=30
    )
    app = FastAPI()
    app.dependency_overrides[get_settings] = lambda: settings
    entered, release = asyncio.Event(), asyncio.Event()

    @app.post("/login")
    async def login():
        return {"access_token": "SECRET-token-abc123"}

    @app.post("/hold")
    async def hold():
        entered.set()
        await release.wait()
        return {}

    app.add_middleware(IdempotencyMiddleware)
    headers = key()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client:
        first = await client.post("/login", headers=headers)
        replayed = await client.post("/login", headers=headers)
        stored = [redis_client.get(slot) for slot in redis_client.scan_iter("gridledger:idem:*")]
        assert len(stored) == 1 and b"SECRET-token-abc123" not in stored[0]
        assert replayed.json() == first.json() == {"access_token": "SECRET-token-abc123"}
        assert redis_client.ttl(next(redis_client.scan_iter("gridledger:idem:*"))) > 30

        redis_client.flushdb()
        holding = asyncio.create_task(client.post("/hold", headers=key()))
        await entered.wait()
        pending = next(redis_client.scan_iter("gridledger:idem:*"))
        assert 0 < redis_client.ttl(pending) <= 30  # a process that dies frees the key soon
        release.set()
        assert (await holding).status_code == 200


@pytest.mark.anyio
async def test_store_down_is_503_and_nothing_runs(tmp_path):
    settings = Settings(
        _env_file=None, data_dir=tmp_path, redis_url="redis://127.0.0.1:9/0"
    )  # nothing listens
    app = FastAPI()
    app.dependency_overrides[get_settings] = lambda: settings
    ran = []

    @app.post("/echo")
    async def echo():
        ran.append(1)
        return {}

    app.add_middleware(IdempotencyMiddleware)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client:
        reply = await client.post("/echo", headers=key())
    assert (
        reply.status_code == 503
        and reply.json()["type"].endswith("/service-unavailable")
        and not ran
    )

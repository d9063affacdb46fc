"""My orders and my balance without FastAPI (backend/api/fast_private.py): which requests it
answers itself; on PostgreSQL, that its answers are the routes' bytes (pages, filters, the
balance), that authentication is checked on every request (a revoked key, a missing scope, a
disabled account are refused at once with the routes' problems) and that every request is
counted once against the rate limit."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from backend.accounts.models import Account, ApiKey
from backend.accounts.security import create_access_token
from backend.api import fast_private
from backend.api.fast_private import credentials, orders_query
from backend.core.config import Settings
from backend.core.db import make_engine
from backend.core.utc import utc_now
from backend.market.schemas import OrderPublicStatus
from tests.fixtures.app import app_on
from tests.fixtures.private_reads import BIG, ME, START, seed_reader
from tests.fixtures.services import TEST_REDIS_URL

KEY, WRITER = "glk_test_fast_private", "glk_test_fast_private_trade_only"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"", (None, 100, None)),
        (b"limit=3&status=partially_filled", (None, 3, OrderPublicStatus.PARTIALLY_FILLED)),
        (b"cursor=azo1&limit=500", ("azo1", 500, None)),
    ],
)
def test_well_formed_order_queries_are_answered_here(query, expected):
    assert orders_query(query) == expected


@pytest.mark.parametrize(
    "query",
    [b"limit=0", b"limit=501", b"limit=x", b"status=gone", b"status=open&status=open",
     b"other=1", b"cursor=" + b"c" * 65, b"limit=1&"],
)  # fmt: skip
def test_anything_else_goes_to_the_route(query):
    assert orders_query(query) is None


def test_a_repeated_credential_goes_to_the_route():
    headers = [(b"x-api-key", b"a"), (b"x-api-key", b"b")]
    assert credentials({"headers": headers}) is None
    assert credentials({"headers": [(b"authorization", b"Bearer t")]}) == ("Bearer t", None)


def seed(url: str) -> Account:
    """The reader with a read key and a trade-only key, five orders (the second filled in the
    database), an open trade it buys and its balances."""
    return seed_reader(
        url,
        email="fast@example.org",
        keys={KEY: ["read"], WRITER: ["trade"]},
        orders=[
            {"price": BIG + i, "expiry": 2**40, "matched_wh": BIG + i if i == 1 else 0}
            for i in range(5)
        ],
        trades=[
            {
                "seller": "0x" + "cd" * 20,
                "buyer": ME,
                "quantity_wh": BIG,
                "price": 1,
                "payment": BIG + 3,
            }
        ],
    )


async def _fixed_clock(settings: Settings) -> int:
    return START - 3600


@pytest.fixture
def world(fresh_pg_url, tmp_path, monkeypatch, redis_client):
    """(client, account, url, authentications on this path) on an app with a limit of 40."""
    account = seed(fresh_pg_url)
    from backend.api import deps

    monkeypatch.setattr(deps, "read_chain_time", _fixed_clock)
    monkeypatch.setattr(fast_private, "read_chain_time", _fixed_clock)
    ours: list[int] = []
    real = fast_private.authenticate_async
    monkeypatch.setattr(fast_private, "authenticate_async", lambda *a: ours.append(1) or real(*a))
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        database_url=fresh_pg_url,
        redis_url=TEST_REDIS_URL,
        public_cache_ttl_s=0,
        rate_limit_per_minute=40,
    )
    app, engine = app_on(fresh_pg_url, settings)
    with TestClient(app) as client:
        yield client, account, fresh_pg_url, ours, settings
    engine.dispose()


def test_answers_are_the_routes_bytes(world):
    client, account, _, ours, settings = world
    key = {"X-API-Key": KEY}
    token = {"Authorization": "Bearer " + create_access_token(account.id, [], settings)}
    pairs = []
    for path in (
        "/v1/trading/orders?limit=2",
        "/v1/trading/orders?status=filled",
        "/v1/trading/orders?status=open&limit=500",
        "/v1/energy/balance",
    ):
        for headers in (key, token):
            fast = client.get(path, headers=headers)
            route = client.get(path + ("&" if "?" in path else "?") + "unknown=1", headers=headers)
            pairs.append((fast, route))
    cursor = pairs[0][0].json()["next_cursor"]
    page_2 = client.get(f"/v1/trading/orders?limit=2&cursor={cursor}", headers=key)
    page_2_route = client.get(f"/v1/trading/orders?limit=2&cursor={cursor}&u=1", headers=key)
    for fast, route in pairs:
        assert fast.status_code == 200, fast.text
        assert fast.content == route.content
        assert fast.headers["content-type"] == route.headers["content-type"]
    assert page_2.content == page_2_route.content
    assert [o["seq"] for o in page_2.json()["items"]] == [3, 2]
    assert [o["status"] for o in pairs[2][0].json()["items"]] == ["filled"]
    assert pairs[6][0].json()["token_balance"] == str(BIG + 7)
    assert pairs[6][0].json()["escrowed"] == str(BIG + 3)
    assert len(ours) == len(pairs) + 1  # the fast path authenticated; the others: the route


def test_refusals_are_the_routes_problems_and_take_effect_at_once(world):
    client, account, url, _, _ = world
    key = {"X-API-Key": KEY}
    assert client.get("/v1/trading/orders", headers=key).status_code == 200
    cases = {
        "no credential": {},
        "unknown key": {"X-API-Key": KEY + "x"},
        "no read scope": {"X-API-Key": WRITER},
        "bad cursor": None,
    }
    replies = {}
    for name, headers in cases.items():
        path = "/v1/trading/orders" + ("?cursor=bm8" if headers is None else "")
        headers = key if headers is None else headers
        replies[name] = (
            client.get(path, headers=headers),
            client.get(path + ("&" if "?" in path else "?") + "u=1", headers=headers),
        )
    for fast, route in replies.values():
        assert fast.status_code == route.status_code and fast.json() == route.json()
    assert [fast.status_code for fast, _ in replies.values()] == [401, 401, 403, 422]
    engine = make_engine(url)
    with Session(engine) as session:  # revoke: the next request is refused
        row = session.exec(select(ApiKey).where(ApiKey.name == KEY)).one()
        row.revoked_at = utc_now()
        session.commit()
    assert client.get("/v1/energy/balance", headers=key).status_code == 401
    with Session(engine) as session:  # a disabled account: its tokens too
        session.get(Account, account.id).active = False
        session.commit()
    engine.dispose()
    token = create_access_token(account.id, [], world[4])
    refused = client.get("/v1/energy/balance", headers={"Authorization": "Bearer " + token})
    assert refused.status_code == 401


def test_every_request_counts_once_against_the_rate_limit(world):
    client, _, _, ours, settings = world
    key = {"X-API-Key": KEY}
    statuses = [client.get("/v1/energy/balance", headers=key).status_code for _ in range(40)]
    over = client.get("/v1/trading/orders", headers=key)
    assert statuses == [200] * settings.rate_limit_per_minute
    assert over.status_code == 429 and "retry-after" in over.headers
    assert len(ours) == 41

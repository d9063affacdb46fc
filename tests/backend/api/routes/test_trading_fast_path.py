"""POST /v1/trading/orders through the pre-routing path (backend/api/fast_orders.py), on Anvil
+ PostgreSQL with a current mirror: it stores a session's wallet-signed energy offer, and every
answer it gives that is not a 202 is byte for byte the route's (the same request to the same
database through an app without the path), also for an account disabled after this process
cached it. Requests it does not take (a malformed body, a bid) are answered by the route."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.accounts.models import Account
from backend.accounts.security import decode_access_token
from backend.api.fast_orders import OrderIntakePath
from backend.market.order_writer import all_writers
from tests.fixtures.api import signed_wallet_order
from tests.fixtures.app import app_on
from tests.fixtures.indexing import catch_up

QUANTITY, PRICE = 1_000, 100_000


def fast_path(client: TestClient) -> OrderIntakePath:
    """The app's OrderIntakePath instance (its middleware stack is built by the first request)."""
    layer: Any = client.app.middleware_stack  # type: ignore[attr-defined]
    while not isinstance(layer, OrderIntakePath):
        layer = layer.app
    return layer


@pytest.fixture
def route_client(market):
    """A second app on the same database and settings, without the fast path."""
    api = market["api"]
    app, engine = app_on(api.settings.database_url, api.settings)
    app.user_middleware = [m for m in app.user_middleware if m.cls is not OrderIntakePath]
    with TestClient(app) as client:
        yield client
    engine.dispose()


def same_answer(fast, route) -> None:
    assert fast.status_code == route.status_code
    assert fast.content == route.content
    assert fast.headers["content-type"] == route.headers["content-type"]
    assert fast.headers.get("retry-after") == route.headers.get("retry-after")


def offer(market, quantity_wh: int = QUANTITY):
    return signed_wallet_order(
        market["client"],
        market["buyer"],
        market["wallet"],
        side="sell",
        delivery_start=market["period"],
        quantity_wh=quantity_wh,
        price=PRICE,
    )


def stored_by_writers() -> int:
    return sum(writer.stored for writer in all_writers())


def test_an_offer_is_stored_by_the_fast_path_and_its_refusals_are_the_routes(market, route_client):
    client, headers = market["client"], market["buyer"]
    digest, body = offer(market)
    catch_up(market["indexer"])
    before = stored_by_writers()

    placed = client.post("/v1/trading/orders", headers=headers, json=body)

    assert placed.status_code == 202, placed.text
    assert placed.json() == {
        "id": digest,
        "status": "open",
        "poll": f"/v1/trading/orders/{digest}",
        "tx_hash": None,
    }
    assert stored_by_writers() == before + 1
    path = fast_path(client)
    assert path.answered == 1
    polled = client.get(placed.json()["poll"], headers=headers)
    assert polled.status_code == 200 and polled.json()["status"] == "open"

    # the same order again: 409 duplicate-order, from the path and from the route alike
    again = client.post("/v1/trading/orders", headers=headers, json=body)
    assert again.status_code == 409 and again.json()["type"].endswith("/duplicate-order")
    assert path.answered == 2
    same_answer(again, route_client.post("/v1/trading/orders", headers=headers, json=body))


def test_a_disabled_account_is_refused_although_the_path_cached_it(market, route_client):
    client, headers, api = market["client"], market["buyer"], market["api"]
    bodies = [offer(market)[1] for _ in range(2)]  # signed while the account may read
    catch_up(market["indexer"])
    first = client.post("/v1/trading/orders", headers=headers, json=bodies[0])
    assert first.status_code == 202, first.text
    account_id = uuid.UUID(decode_access_token(headers["Authorization"][7:], api.settings)["sub"])
    with Session(api.engine) as session:
        account = session.get(Account, account_id)
        assert account is not None
        account.active = False
        session.add(account)
        session.commit()
    before = stored_by_writers()

    refused = client.post("/v1/trading/orders", headers=headers, json=bodies[1])

    assert refused.status_code == 401, refused.text
    assert fast_path(client).answered == 2  # the path answered: its account was cached
    assert stored_by_writers() == before
    same_answer(refused, route_client.post("/v1/trading/orders", headers=headers, json=bodies[1]))


@pytest.mark.parametrize(
    ("change", "content_type"),
    [
        ({"quantity_wh": 0}, "application/json"),  # the route's 422 validation problem
        ({"signature": "0x12"}, "application/json"),
        ({}, "text/plain"),  # another media type: the route decides how to read it
    ],
)
def test_requests_the_path_does_not_take_are_the_routes(market, route_client, change, content_type):
    client, headers = market["client"], market["buyer"]
    _, body = offer(market)
    catch_up(market["indexer"])
    content = json.dumps({**body, **change})
    sent = {**headers, "Content-Type": content_type}

    fast = client.post("/v1/trading/orders", headers=sent, content=content)

    assert fast.status_code >= 400
    same_answer(fast, route_client.post("/v1/trading/orders", headers=sent, content=content))
    assert fast_path(client).answered == 0


def test_an_offer_beyond_the_balance_is_the_chains_refusal_as_the_route_gives_it(
    market, route_client
):
    """The writer hands it back (the mirror says it does not fit): the path reads the account
    and runs the sync intake, which asks the chain and refuses it."""
    client, headers = market["client"], market["buyer"]
    _, body = offer(market, quantity_wh=10**15)  # its collateral is far above the deposit
    catch_up(market["indexer"])

    refused = client.post("/v1/trading/orders", headers=headers, json=body)

    assert refused.status_code == 422, refused.text
    assert refused.json()["type"].endswith("/insufficient-collateral")
    assert fast_path(client).answered == 1
    same_answer(refused, route_client.post("/v1/trading/orders", headers=headers, json=body))


def test_over_the_rate_limit_the_path_answers_the_routes_429(market):
    """Both apps allow 1 request a minute; the account has sent more this minute (signing in,
    typed data), so each answers 429 — within the same second, so Retry-After matches."""
    api, headers = market["api"], market["buyer"]
    _, body = offer(market)
    catch_up(market["indexer"])
    settings = api.settings.model_copy(update={"rate_limit_per_minute": 1})
    apps = [app_on(settings.database_url, settings) for _ in range(2)]
    apps[1][0].user_middleware = [
        m for m in apps[1][0].user_middleware if m.cls is not OrderIntakePath
    ]
    with TestClient(apps[0][0]) as fast_client, TestClient(apps[1][0]) as plain_client:
        for _ in range(5):
            second = int(time.time())
            fast = fast_client.post("/v1/trading/orders", headers=headers, json=body)
            route = plain_client.post("/v1/trading/orders", headers=headers, json=body)
            if int(time.time()) == second:
                break
        assert fast.status_code == 429, fast.text
        assert fast_path(fast_client).answered >= 1
        same_answer(fast, route)
    for _, engine in apps:
        engine.dispose()

"""The order-intake path's request checks (backend/api/fast_orders.py) without a server: which
credentials and media types it takes, how it reads the body, and that a request it passes on
reaches the route with every byte it sent. Its answers against the route's are in
tests/backend/api/routes/test_trading_fast_path.py (Anvil + PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest

from backend.api.fast_json import ModelJSON
from backend.api.fast_orders import (
    MAX_BODY_BYTES,
    answer_accepted,
    bearer_token,
    read_body,
    replay_body,
)
from backend.market.models import OrderStatus
from backend.market.schemas import Accepted


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"authorization", b"Bearer abc")], "abc"),
        ([(b"authorization", b"bearer  abc "), (b"content-type", b"application/json")], "abc"),
        ([(b"authorization", b"Bearer abc"), (b"authorization", b"Bearer def")], "abc"),
    ],
)
def test_a_lone_session_token_is_taken(headers, expected):
    assert bearer_token(headers) == expected


@pytest.mark.parametrize(
    "headers",
    [
        [],  # no credential: the route's 401
        [(b"authorization", b"Basic abc")],
        [(b"authorization", b"Bearer ")],
        [(b"authorization", b"Bearer abc"), (b"x-api-key", b"k")],  # the route weighs both
        [(b"x-api-key", b"k")],
        [(b"authorization", b"Bearer abc"), (b"content-type", b"text/plain")],
        [(b"authorization", b"Bearer abc"), (b"content-type", b"application/json; charset=x")],
    ],
)
def test_anything_else_goes_to_the_route(headers):
    assert bearer_token(headers) is None


def feed(*messages):
    queue = list(messages)

    async def receive():
        return queue.pop(0)

    return receive


def test_the_body_is_read_whole_and_replayed_to_the_route_unchanged():
    async def run():
        receive = feed(
            {"type": "http.request", "body": b'{"a":', "more_body": True},
            {"type": "http.request", "body": b"1}", "more_body": False},
            {"type": "http.disconnect"},
        )
        messages, body = await read_body(receive)
        replay = replay_body(messages, receive)
        return body, [await replay() for _ in range(3)]

    body, replayed = asyncio.run(run())
    assert body == b'{"a":1}'
    assert [m.get("body") for m in replayed] == [b'{"a":', b"1}", None]
    assert replayed[2]["type"] == "http.disconnect"  # then the connection's own messages


def test_a_body_too_big_for_an_order_is_passed_on_with_what_was_read():
    async def run():
        chunk = b"x" * (MAX_BODY_BYTES // 2 + 1)
        receive = feed(
            *({"type": "http.request", "body": chunk, "more_body": True} for _ in range(2)),
            {"type": "http.request", "body": b"tail", "more_body": False},
        )
        messages, body = await read_body(receive)
        replay = replay_body(messages, receive)
        return body, b"".join([(await replay())["body"] for _ in range(3)]), len(chunk)

    body, replayed, size = asyncio.run(run())
    assert body is None
    assert replayed == b"x" * 2 * size + b"tail"


def test_a_client_gone_before_the_end_of_its_body_is_passed_on():
    async def run():
        receive = feed(
            {"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}
        )
        return await read_body(receive)

    messages, body = asyncio.run(run())
    assert body is None and len(messages) == 2


@pytest.mark.parametrize("order_id", ["0x" + "ab" * 32, "0x" + "00" * 32, "0x1"])
def test_the_202_is_the_routes_response_byte_for_byte(order_id):
    route = ModelJSON(
        Accepted(id=order_id, status=OrderStatus.OPEN, poll=f"/v1/trading/orders/{order_id}"),
        status_code=202,
    )
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    asyncio.run(answer_accepted(send, order_id))
    assert sent == [
        {"type": "http.response.start", "status": 202, "headers": route.raw_headers},
        {"type": "http.response.body", "body": route.body},
    ]

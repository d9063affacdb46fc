"""The public trade list's path without FastAPI (backend/api/fast_trades.py): which query
strings it answers itself, and on PostgreSQL that its bytes are those of the models the route
used to build (`Page[TradePublic]`), page by page and market by market, with shared reads on
and off; what it declines gets the route's problems."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.api import fast_trades
from backend.api.fast_trades import trades_query_of
from backend.core.config import Settings
from backend.core.db import make_engine
from backend.market import trades
from backend.market.schemas import Page, TradePublic
from indexer.models import Trade, TradeStatus
from tests.fixtures.app import app_on
from tests.fixtures.services import TEST_REDIS_URL

BIG = 2**60  # above 2^53: a decimal string on the wire
START = 2**31 // 900 * 900


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"", (None, None, 100)),
        (b"limit=500", (None, None, 500)),
        (b"market_id=rec-7&limit=1", ("rec-7", None, 1)),
        (b"cursor=azo1&market_id=energy%2D900", ("energy-900", "azo1", 100)),
        (b"cursor=", (None, "", 100)),  # empty: the first page, as the route reads it
    ],
)
def test_well_formed_queries_are_answered_here(query, expected):
    assert trades_query_of(query) == expected


@pytest.mark.parametrize(
    "query",
    [
        b"limit=0",
        b"limit=501",
        b"limit=-1",
        b"limit=1e2",
        b"limit=",
        b"market_id=",
        b"market_id=gas-900",
        b"market_id=energy-" + b"9" * 19,
        b"cursor=" + b"a" * 65,
        b"limit=5&limit=6",  # repeated: the route decides
        b"limit=5&other=1",  # anything else: the route
        b"limit=5&",
    ],
)
def test_anything_else_goes_to_the_route(query):
    assert trades_query_of(query) is None


def seed(url: str) -> list[Trade]:
    """Energy trades of two periods and REC swaps, amounts above 2^53; returns them."""
    rows = []
    for i in range(1, 8):
        energy = i % 3 != 0
        rows.append(
            Trade(
                trade_id=i,
                chain_id=31337,
                product="energy" if energy else "rec",
                status=TradeStatus.OPEN if energy else TradeStatus.SWAPPED,
                seller="0x" + f"{i:040x}",
                buyer="0x" + "bb" * 20,
                certificate_id=None if energy else 40 + i,
                quantity_wh=BIG + i,
                price=100_000 + i,
                payment=BIG * 2 + i,
                delivery_start=START + 900 * (i % 2) if energy else None,
                delivery_end=START + 900 * (i % 2 + 1) if energy else None,
                sell_order_hash="0x" + "01" * 32,
                buy_order_hash="0x" + "02" * 32,
                created_tx="0x" + f"{i:064x}",
                created_block=10 + i,
                created_at=1_767_225_600 + i,
            )
        )
    engine = make_engine(url)
    with Session(engine) as session:
        session.add_all(rows)
        session.commit()
        for row in rows:
            session.refresh(row)
            session.expunge(row)
    engine.dispose()
    return rows


def as_models(url: str, market_id: str | None, cursor: str | None, limit: int) -> bytes:
    """The page as the route built it before: models from the sync service."""
    engine = make_engine(url)
    with Session(engine) as session:
        items, next_cursor = trades.list_trades(
            session, market_id=market_id, cursor=cursor, limit=limit
        )
    engine.dispose()
    page = Page[TradePublic](items=items, next_cursor=next_cursor)
    body = page.model_dump_json().encode()
    # what FastAPI's JSONResponse made of the same model
    assert body == json.dumps(
        page.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")
    return body


@pytest.mark.parametrize("share", [True, False])
def test_pages_are_the_bytes_of_the_models(fresh_pg_url, tmp_path, monkeypatch, share):
    url = fresh_pg_url
    seed(url)
    fast_answers = []
    real = trades.trades_json
    monkeypatch.setattr(
        fast_trades.trades, "trades_json", lambda *a: fast_answers.append(1) or real(*a)
    )
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        database_url=url,
        redis_url=TEST_REDIS_URL,
        public_cache_ttl_s=0,
        orderbook_share_reads=share,
    )
    app, engine = app_on(url, settings)
    got, expected = [], []
    with TestClient(app) as client:
        for market_id in (None, f"energy-{START}", f"energy-{START + 900}", "rec-46", "rec-1"):
            cursor = None
            while True:
                params = {"limit": "2"} | ({"market_id": market_id} if market_id else {})
                reply = client.get(
                    "/v1/trading/trades", params=params | ({"cursor": cursor} if cursor else {})
                )
                assert reply.status_code == 200, reply.text
                assert reply.headers["content-type"] == "application/json"
                got.append(reply.content)
                expected.append(as_models(url, market_id, cursor, 2))
                cursor = reply.json()["next_cursor"]
                if cursor is None:
                    break
        whole = client.get("/v1/trading/trades")
        route = client.get("/v1/trading/trades?limit=100&unknown=1")  # not ours: the route
        bad_cursor = client.get("/v1/trading/trades?cursor=bm90LWFuLWludA")
        not_aligned = client.get("/v1/trading/trades?market_id=energy-1")
        bad_limit = client.get("/v1/trading/trades?limit=0")
    engine.dispose()
    assert got == expected
    assert len(got) == 4 + 1 + 2 + 1 + 1  # pages of 2: all 7, 2 + 3 per period, 1 and 0 RECs
    assert whole.content == route.content == as_models(url, None, None, 100)
    assert [t["trade_id"] for t in whole.json()["items"]] == [7, 6, 5, 4, 3, 2, 1]
    assert whole.json()["items"][0]["quantity_wh"] == str(BIG + 7)
    assert whole.json()["items"][1]["market_id"] == "rec-46"
    assert len(fast_answers) == len(got) + 1  # and `whole`; the others went to the route
    assert bad_cursor.status_code == 422, bad_cursor.text
    assert bad_cursor.json()["type"].endswith("/invalid-cursor")
    assert not_aligned.status_code == 404 and bad_limit.status_code == 422

"""The async read path (backend/core/async_db.py) on PostgreSQL: every hot query returns the
same rows through the psycopg async pool as through a sync session; routes built on it answer
the same JSON as the sync services (amounts above 2^53 as decimal strings); a connection that
failed leaves the pool; SQLite has no async pool."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlmodel import Session

from backend.accounts.models import Account
from backend.accounts.security import hash_api_key
from backend.api import deps, fast_book
from backend.core.async_db import (
    AsyncPool,
    AsyncReads,
    Query,
    SyncReads,
    async_pool,
    close_pools,
    libpq_conninfo,
)
from backend.core.config import Settings
from backend.core.db import make_engine
from backend.energy import services
from backend.market import account_orders, book, trades
from backend.market.schemas import OrderPublic, OrderPublicStatus, Page
from indexer.models import MarketOrder
from tests.fixtures.app import app_on
from tests.fixtures.private_reads import BIG, ME, START, seed_reader
from tests.fixtures.services import TEST_REDIS_URL

NOW = START - 3600
KEY = "glk_test_async_reads"


def seed(url: str) -> Account:
    """The reader with a read key, five orders (the first filled on chain), two open trades
    (it sells one, buys the other) and its balances."""
    other = "0x" + "cd" * 20
    return seed_reader(
        url,
        email="async@example.org",
        keys={KEY: ["read"]},
        orders=[{"price": BIG + 1_000 * i, "expiry": START - 1} for i in range(5)],
        trades=[
            {
                "seller": seller,
                "buyer": buyer,
                "quantity_wh": BIG + k,
                "price": 100_000,
                "payment": BIG,
            }
            for k, (seller, buyer) in enumerate(((ME, other), (other, ME)))
        ],
        also=[
            MarketOrder(
                order_hash="0x" + f"{0:064x}",
                chain_id=31337,
                maker=ME,
                filled_wh=BIG,
                cancelled=False,
                block_number=1,
            )
        ],
    )


def reads_of(
    account: Account,
) -> list[tuple[Query, dict[str, Any]]]:
    """Every hot query with the parameters the routes give it."""
    my_orders = [
        account_orders.my_orders_params(account.id, now=NOW, cursor=cursor, limit=2, status=status)
        for cursor, status in (
            (None, None),
            (None, OrderPublicStatus.OPEN),
            (None, OrderPublicStatus.FILLED),
        )
    ]
    return [
        (book.ORDER_BOOK, book.order_book_params(f"energy-{START}", now=NOW)),
        *my_orders,
        (services.BALANCES, {"address": ME}),
        (services.OPEN_TRADES, {"address": ME}),
        trades.trades_params(market_id=None, cursor=None, limit=1, address=ME),
        trades.trades_params(market_id=f"energy-{START}", cursor=None, limit=5, address=ME),
        services.transfers_params(account, cursor=None, limit=5),
    ]


def on_pool(url: str, use: Callable[[AsyncReads], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        conninfo = libpq_conninfo(url)
        assert conninfo is not None
        return await use(AsyncReads(AsyncPool(conninfo, 2)))

    return asyncio.run(run())


@pytest.fixture
def seeded(fresh_pg_url) -> tuple[str, Account]:
    return fresh_pg_url, seed(fresh_pg_url)


def test_async_pool_returns_the_rows_of_the_sync_session(seeded):
    url, account = seeded
    queries = reads_of(account)

    async def all_async(reads: AsyncReads) -> list[list[tuple]]:
        return [[tuple(row) for row in await reads.all(q, p)] for q, p in queries]

    got = on_pool(url, all_async)
    engine = make_engine(url)
    with Session(engine) as session:
        sync = SyncReads(session)

        async def all_sync() -> list[list[tuple]]:
            return [[tuple(row) for row in await sync.all(q, p)] for q, p in queries]

        expected = asyncio.run(all_sync())
    engine.dispose()
    assert got == expected
    book_rows, page, open_page, filled_page, balances, open_trades, *history = got
    assert len(book_rows) == 4  # the filled order is not live
    assert [row[0] for row in page] == [5, 4, 3]  # newest first: a page of 2 and one more (seq)
    assert len(open_page) == 3 and len(filled_page) == 1
    assert balances == [(BIG + 7, BIG + 8, 9)] and len(open_trades) == 2
    assert [[row[0] for row in rows] for rows in history] == [[2, 1], [2, 1], [2, 1]]


def test_pages_and_statuses_match_the_sync_service(seeded):
    url, account = seeded
    engine = make_engine(url)

    async def page(reads: AsyncReads, cursor: str | None) -> tuple[list, str | None]:
        query, params = account_orders.my_orders_params(account.id, now=NOW, cursor=cursor, limit=2)
        return account_orders.my_orders_page(await reads.all(query, params), 2)

    with Session(engine) as session:
        cursor, seen = None, []
        while True:
            items, cursor_async = on_pool(url, lambda reads, c=cursor: page(reads, c))
            expected, cursor_sync = account_orders.list_my_orders(
                session, account, now=NOW, cursor=cursor, limit=2
            )
            assert (items, cursor_async) == (expected, cursor_sync)
            seen += items
            if cursor_async is None:
                break
            cursor = cursor_async
    engine.dispose()
    assert [o.seq for o in seen] == [5, 4, 3, 2, 1]
    assert {o.status for o in seen} == {OrderPublicStatus.OPEN, OrderPublicStatus.FILLED}


def test_the_balance_in_one_statement_is_its_two_queries(seeded):
    url, _ = seeded

    async def both(reads: AsyncReads, address: str) -> tuple[Any, Any]:
        params = {"address": address}
        one = services.balance_rows(await reads.all(services.BALANCE, params))
        two = (
            (await reads.all(services.BALANCES, params))[0],
            await reads.all(services.OPEN_TRADES, params),
        )
        return one, two

    for address, trades_seen in ((ME, 2), ("0x" + "ef" * 20, 0)):
        (balances, open_trades), (expected, expected_trades) = on_pool(
            url, lambda reads, a=address: both(reads, a)
        )
        assert tuple(balances) == tuple(expected)
        assert [tuple(t) for t in open_trades] == [tuple(t) for t in expected_trades]
        assert len(open_trades) == trades_seen
    assert tuple(balances) == (None, None, None)  # nothing mirrored for the stranger


def test_my_orders_json_is_the_models(seeded):
    """`my_orders_json` writes the bytes of `Page[OrderPublic]` of the same rows: every page,
    each status filter, before and after gate closure (open, filled, expired)."""
    url, account = seeded
    pages = []
    for now in (NOW, START + 1):
        for status in (None, *OrderPublicStatus):
            cursor: str | None = None
            while True:
                query, params = account_orders.my_orders_params(
                    account.id, now=now, cursor=cursor, limit=2, status=status
                )
                rows = on_pool(url, lambda reads, q=query, p=params: reads.all(q, p))
                items, cursor = account_orders.my_orders_page(rows, 2)
                model = Page[OrderPublic](items=items, next_cursor=cursor)
                assert account_orders.my_orders_json(rows, 2) == model.model_dump_json().encode()
                pages.append(model)
                if cursor is None:
                    break
    statuses = {o.status for page in pages for o in page.items}
    assert statuses == {
        OrderPublicStatus.OPEN,
        OrderPublicStatus.FILLED,
        OrderPublicStatus.EXPIRED,
    }
    assert b'"salt":"' + str(2**255).encode() + b'"' in pages[2].model_dump_json().encode()


def uncached(url: str, data_dir: Any, **overrides: Any) -> Settings:
    """Settings of an app on `url` with the read cache off: every request runs its reads."""
    return Settings(
        _env_file=None,
        data_dir=data_dir,
        database_url=url,
        redis_url=TEST_REDIS_URL,
        public_cache_ttl_s=0,
        **overrides,
    )


def test_async_routes_answer_the_json_of_the_sync_services(seeded, tmp_path):
    url, account = seeded
    app, engine = app_on(url, uncached(url, tmp_path))
    with TestClient(app) as client:
        reply = client.get("/v1/energy/balance", headers={"X-API-Key": KEY})
        stranger = client.get("/v1/energy/balance", headers={"X-API-Key": KEY + "x"})
    with Session(engine) as session:
        expected = services.balance(session, account).model_dump(mode="json")
    engine.dispose()
    assert reply.status_code == 200, reply.text
    assert reply.json() == expected
    assert reply.json()["token_balance"] == str(BIG + 7)  # above 2^53: a string
    assert reply.json()["escrowed"] == str(BIG)
    assert [p["net_wh"] for p in reply.json()["positions"]] == ["1"]  # bought BIG+1, sold BIG
    assert stranger.status_code == 401


def test_order_book_json_is_the_models(seeded):
    url, _ = seeded
    engine = make_engine(url)

    async def read(reads: AsyncReads) -> bytes:
        rows = await reads.all(book.ORDER_BOOK, book.order_book_params(f"energy-{START}", now=NOW))
        model = book.order_book_of(f"energy-{START}", rows, now=NOW)
        return model.__pydantic_serializer__.to_json(model)

    body = on_pool(url, read)
    with Session(engine) as session:
        expected = book.order_book(session, f"energy-{START}", now=NOW)
    engine.dispose()
    assert body == expected.model_dump_json().encode()
    assert b'"price":"' + str(BIG + 4_000).encode() + b'"' in body
    params = book.order_book_params(f"energy-{START}", now=NOW)
    rows = on_pool(url, lambda reads: reads.all(book.ORDER_BOOK, params))
    assert book.order_book_json(f"energy-{START}", rows, now=NOW) == body  # without the models
    assert book.order_book_json("rec-1", [], now=NOW) == (
        book.order_book_of("rec-1", [], now=NOW).model_dump_json().encode()
    )


def test_async_book_history_and_transfers_answer_what_the_sync_services_do(
    seeded, tmp_path, monkeypatch
):
    """The order book from the pure-ASGI path (shared reads on and off) is the route's bytes;
    history and transfers are the sync services' JSON, page by page."""
    url, account = seeded
    monkeypatch.setattr(deps, "read_chain_time", _fixed_clock)
    monkeypatch.setattr(fast_book, "read_chain_time", _fixed_clock)
    fast_answers = []
    monkeypatch.setattr(
        book,
        "order_book_json",
        lambda *a, _real=book.order_book_json, **k: fast_answers.append(1) or _real(*a, **k),
    )
    books = {}
    for share in (True, False):
        app, engine = app_on(url, uncached(url, tmp_path, orderbook_share_reads=share))
        with TestClient(app) as client:
            path = f"/v1/trading/orderbook?market_id=energy-{START}&depth=3"
            books[share] = client.get(path)
            books["route"] = client.get(path + "&unknown=1")  # not ours: the FastAPI route
            bad_depth = client.get(f"/v1/trading/orderbook?market_id=energy-{START}&depth=0")
            not_aligned = client.get("/v1/trading/orderbook?market_id=energy-1")
            key = {"X-API-Key": KEY}
            history = [client.get("/v1/trading/history", params={"limit": 1}, headers=key)]
            history.append(
                client.get(
                    "/v1/trading/history",
                    params={"limit": 1, "cursor": history[0].json()["next_cursor"]},
                    headers=key,
                )
            )
            in_market = client.get(
                "/v1/trading/history", params={"market_id": f"energy-{START}"}, headers=key
            )
            transfers = client.get("/v1/energy/transfers", params={"limit": 5}, headers=key)
            delivering = client.get(
                "/v1/energy/transfers", params={"status": "scheduled"}, headers=key
            )
        engine.dispose()
    engine = make_engine(url)
    with Session(engine) as session:
        expected_history = trades.list_trades(
            session, market_id=None, cursor=None, limit=2, address=ME
        )
        expected_transfers = services.list_transfers(
            session, account, now=NOW, cursor=None, limit=5
        )
    engine.dispose()
    assert books[True].status_code == 200, books[True].text
    assert books[True].content == books[False].content == books["route"].content
    assert books[True].headers["content-type"] == books["route"].headers["content-type"]
    assert len(fast_answers) == 2  # one per app; the others went to the route
    assert bad_depth.status_code == 422 and not_aligned.status_code == 404
    assert [r.status_code for r in history] == [200, 200]
    items = [item for r in history for item in r.json()["items"]]
    assert items == [t.model_dump(mode="json") for t in expected_history[0]]
    assert history[1].json()["next_cursor"] is None
    assert in_market.json()["items"] == items
    assert transfers.status_code == 200, transfers.text
    assert transfers.json()["items"] == [t.model_dump(mode="json") for t in expected_transfers[0]]
    assert transfers.json()["items"][0]["contracted_wh"] == str(BIG + 1)
    assert [t["status"] for t in delivering.json()["items"]] == ["scheduled", "scheduled"]


async def _fixed_clock(settings: Settings) -> int:
    return NOW


def test_only_statements_with_one_plan_for_all_keep_a_generic_plan(seeded):
    """My orders (index (account_id, seq)) and the key lookup are planned once per connection
    and that plan walks the index; the order book is planned for each execution. One
    connection serves both modes."""
    url, account = seeded
    conninfo = libpq_conninfo(url)
    assert conninfo is not None
    mine, mine_params = account_orders.my_orders_params(account.id, now=NOW, cursor=None, limit=2)
    book_params = book.order_book_params(f"energy-{START}", now=NOW)
    fragments = {  # a piece of each statement's text, as pg_prepared_statements shows it
        "mine": "ORDER BY signed_orders.seq DESC",
        "key": "JOIN accounts ON accounts.id = api_keys.account_id",
        "book": "sum(signed_orders.quantity_wh",
    }

    async def run() -> tuple[dict[str, tuple[int, int]], int, list[int]]:
        pool, sizes = AsyncPool(conninfo, 1), []
        reads = AsyncReads(pool)
        # psycopg prepares a statement at its fifth execution; PostgreSQL's default mode plans
        # a prepared statement for its parameters five times before it considers a generic plan
        for _ in range(14):
            sizes.append(len(await reads.all(mine, mine_params)))
            await reads.all(deps._KEY_AND_ACCOUNT, {"secret_hash": hash_api_key(KEY)})
            await reads.all(book.ORDER_BOOK, book_params)
        rows = await pool.fetch(
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements", {}
        )
        found = {
            name: (row.generic_plans, row.custom_plans)
            for row in rows
            for name, fragment in fragments.items()
            if fragment in row.statement
        }
        opened = len(pool.idle)
        pool.close()
        return found, opened, sizes

    found, opened, sizes = asyncio.run(run())
    assert opened == 1 and sizes == [3] * 14
    assert found["mine"][0] > 0 and found["key"][0] > 0
    assert found["book"] == (0, found["book"][1]) and found["book"][1] > 0
    dollar = mine.statement.compile(dialect=PGDialect_psycopg(paramstyle="numeric_dollar"))
    values = {**dollar.params, **mine_params}
    with psycopg.ClientCursor(psycopg.connect(conninfo, autocommit=True)) as cursor:
        cursor.execute("SET plan_cache_mode = force_generic_plan")
        cursor.execute(f"PREPARE mine AS {dollar.string}")
        arguments = ", ".join(["%s"] * len(dollar.positiontup))
        cursor.execute(
            f"EXPLAIN EXECUTE mine({arguments})", [values[k] for k in dollar.positiontup]
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.connection.close()
    assert "ix_signed_orders_account_seq" in plan, plan


def test_a_failed_connection_leaves_the_pool(fresh_pg_url):
    conninfo = libpq_conninfo(fresh_pg_url)
    assert conninfo is not None

    async def run() -> tuple[int, int, list]:
        pool = AsyncPool(conninfo, 2)
        await pool.fetch("SELECT 1 AS one", {})
        assert len(pool.idle) == 1
        with pytest.raises(Exception, match="division by zero"):
            await pool.fetch("SELECT 1 / 0", {})
        idle_after_failure = len(pool.idle)
        rows = await pool.fetch("SELECT 2 AS two", {})
        for connection in pool.idle:
            await connection.close()
        return idle_after_failure, len(pool.idle), rows

    idle_after_failure, idle_after, rows = asyncio.run(run())
    assert idle_after_failure == 0 and idle_after == 1
    assert [row.two for row in rows] == [2]


def test_pools_of_closed_loops_and_of_the_shutdown_loop_are_closed(fresh_pg_url):
    """A pool's connections belong to its event loop: a new pool closes those of loops that
    ended (a test client without lifespan runs each request on a loop of its own), and the
    app's shutdown closes its own loop's."""
    settings = Settings(_env_file=None, database_url=fresh_pg_url)

    def backends(expected: int) -> int:
        """The pool's server backends, once they are `expected` (a closed connection's backend
        ends a moment later) or after 5 s."""
        engine = make_engine(fresh_pg_url)
        deadline = time.monotonic() + 5
        with engine.connect() as connection:
            while True:
                count = connection.exec_driver_sql(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pool-test'"
                ).scalar_one()
                if count == expected or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        engine.dispose()
        return int(count)

    async def read() -> AsyncPool:
        pool = async_pool(settings)
        assert pool is not None
        await pool.fetch("SELECT set_config('application_name', 'pool-test', false)", {})
        return pool

    first = asyncio.run(read())  # its loop is closed (and maybe collected) now

    async def second_loop() -> int:
        await read()  # a new pool: the closed loop's was closed when collected, or is now
        open_here = backends(1)
        close_pools()  # the app's shutdown
        return open_here

    assert asyncio.run(second_loop()) == 1 and first.idle == []
    assert backends(0) == 0


def test_sqlite_has_no_async_pool():
    assert libpq_conninfo("sqlite:///x.db") is None
    assert libpq_conninfo("postgresql+psycopg2://u@h/db") is None
    conninfo = libpq_conninfo("postgresql+psycopg://u@h:5432/db?options=-csearch_path%3Ds1")
    assert conninfo is not None and conninfo.startswith("postgresql://") and "s1" in conninfo

"""The group commit of wallet energy offers (backend/market/order_writer.py) on a real
PostgreSQL schema: offers that together overspend a maker's mirrored free balance, sent at once
to one writer or to two (two API workers), are accepted exactly as far as the balance covers
them — the rest go to the chain — and money is conserved; duplicates and other makers' meters
are refused; a mirror behind the chain or a stale nonce hands the order back; the SQL sum of
reserved collateral is the Python one's."""

from __future__ import annotations

import asyncio
import json
import random
import uuid

import psycopg
import pytest
from eth_utils import to_checksum_address
from sqlmodel import Session, col, func, select

from backend.accounts.models import Account, AccountKind
from backend.core.async_db import libpq_conninfo
from backend.core.config import Settings
from backend.core.db import make_engine
from backend.market import intake, order_events
from backend.market import orders as eip712
from backend.market.batch_funds import RESERVED_COLLATERAL
from backend.market.errors import DuplicateOrder, MeterNotOwned
from backend.market.models import OrderStatus, SignedOrder
from backend.market.order_writer import OrderWriter, Pending
from indexer.models import (
    OutboxMessage,
)
from indexer.outbox import OutboxPublisher, RedisStreamSink
from tests.fixtures.mirror import add_mirror, energy_offer
from tests.fixtures.services import TEST_REDIS_URL

CHAIN_ID, HEAD_BLOCK, NOW = 31337, 100, 1_900_000_000
MAKER = to_checksum_address("0x" + "5e" * 20)
START = (NOW // 900 + 4) * 900
TERMS = (500, 2_000)  # tolerance, penalty bps
QUANTITY, PRICE = 10_000, 100_000
EACH = eip712.collateral(QUANTITY, PRICE, *TERMS)  # 190 token units per offer
FREE = 5 * EACH + EACH // 2  # five offers fit, not six


@pytest.fixture
def world(fresh_pg_url):
    """(settings, engine, the maker's account id) on a schema whose mirror is current."""
    engine = make_engine(fresh_pg_url)
    account_id = uuid.uuid4()
    with Session(engine) as session:
        session.add(
            Account(id=account_id, kind=AccountKind.WALLET, address=MAKER.lower(), roles=[])
        )
        add_mirror(
            session,
            chain_id=CHAIN_ID,
            head_block=HEAD_BLOCK,
            maker=MAKER.lower(),
            nonce=3,
            free=FREE,
            terms=TERMS,
        )
        session.commit()
    settings = Settings(_env_file=None, database_url=fresh_pg_url, chain_id=CHAIN_ID)
    yield settings, engine, account_id
    engine.dispose()


def offer(salt: int, *, nonce: int = 3, quantity: int = QUANTITY, meter: bytes | None = None):
    return energy_offer(
        MAKER, quantity_wh=quantity, price=PRICE, start=START, nonce=nonce, salt=salt, meter=meter
    )


def pending(account_id, order, *, head=(NOW, HEAD_BLOCK)) -> Pending:
    return Pending(
        account_id=account_id,
        order=order,
        order_id="0x" + eip712.order_digest(order, CHAIN_ID, MAKER).hex(),
        signature=b"\x01" * 65,
        head=head,
        market=MAKER,
    )


def writer(settings: Settings) -> OrderWriter:
    conninfo = libpq_conninfo(settings.database_url)
    assert conninfo is not None
    return OrderWriter(settings, conninfo)


async def submit_all(writers, account_id, orders) -> list[object]:
    """Every order at once, round-robin over `writers`; each outcome (id, None or the error)."""
    try:
        return await asyncio.gather(
            *(
                writers[i % len(writers)].submit(pending(account_id, order))
                for i, order in enumerate(orders)
            ),
            return_exceptions=True,
        )
    finally:
        for each in writers:
            await each.close()


def stored_collateral(engine) -> tuple[int, int]:
    """(open offers stored, their collateral under TERMS)."""
    with Session(engine) as session:
        rows = session.exec(
            select(SignedOrder.quantity_wh, SignedOrder.price).where(
                SignedOrder.status == OrderStatus.OPEN
            )
        ).all()
    return len(rows), sum(eip712.collateral(q, p, *TERMS) for q, p in rows)


@pytest.mark.parametrize("workers", [1, 2])
def test_concurrent_offers_that_overspend_are_accepted_only_as_far_as_the_balance_goes(
    world, workers
):
    settings, engine, account_id = world
    writers = [writer(settings) for _ in range(workers)]
    outcomes = asyncio.run(submit_all(writers, account_id, [offer(s) for s in range(12)]))
    accepted = [o for o in outcomes if isinstance(o, str)]
    assert len(accepted) == 5  # FREE // EACH
    assert outcomes.count(None) == 7  # handed back: the chain may know a larger balance
    count, locked = stored_collateral(engine)
    assert count == 5 and locked == 5 * EACH <= FREE
    with Session(engine) as session:
        events = session.exec(select(func.count()).select_from(OutboxMessage)).one()
        assert events == 5  # one order.placed each, in the same transactions
    assert sum(w.batches for w in writers) >= 1


def test_what_open_offers_already_reserve_counts_against_the_balance(world):
    settings, engine, account_id = world
    first = asyncio.run(submit_all([writer(settings)], account_id, [offer(s) for s in range(3)]))
    assert all(isinstance(o, str) for o in first)
    later = asyncio.run(submit_all([writer(settings)], account_id, [offer(s) for s in range(3, 9)]))
    assert sum(isinstance(o, str) for o in later) == 2 and later.count(None) == 4
    assert stored_collateral(engine) == (5, 5 * EACH)


def test_a_writer_counts_the_offers_another_writer_stored_since_its_last_batch(world):
    """Writer A keeps the maker's reserved collateral between batches; the offers writer B
    (another API worker) stored meanwhile count against it."""
    settings, engine, account_id = world

    async def scenario():
        a, b = writer(settings), writer(settings)
        try:
            by_a = [await a.submit(pending(account_id, offer(s))) for s in range(2)]
            by_b = [await b.submit(pending(account_id, offer(s))) for s in range(2, 5)]
            return by_a + by_b, await a.submit(pending(account_id, offer(5)))
        finally:
            await a.close()
            await b.close()

    stored, over = asyncio.run(scenario())
    assert all(isinstance(o, str) for o in stored)
    assert over is None  # five stored: no room for a sixth
    assert stored_collateral(engine) == (5, 5 * EACH)


def test_a_refusal_on_a_kept_figure_goes_to_the_chain_and_the_next_batch_counts_afresh(world):
    """Fills free collateral after the writer counted it: its kept figure is too high, never too
    low; an offer refused on it is handed to the chain (which counts exactly), and the writer
    counts afresh for its next batch."""
    settings, engine, account_id = world

    async def scenario():
        a = writer(settings)
        try:
            for s in range(4):
                assert isinstance(await a.submit(pending(account_id, offer(s))), str)
            with Session(engine) as session:  # the matcher fills the first two entirely
                for row in session.exec(select(SignedOrder).order_by(SignedOrder.seq).limit(2)):
                    row.matched_wh = row.quantity_wh
                    session.add(row)
                session.commit()
            # kept: 3 offers + 1 counted since = 4·EACH (truly 2·EACH); one more fits, not two
            both = await asyncio.gather(
                a.submit(pending(account_id, offer(4))), a.submit(pending(account_id, offer(5)))
            )
            return both, await a.submit(pending(account_id, offer(6)))
        finally:
            await a.close()

    (fits, refused), recounted = asyncio.run(scenario())
    assert isinstance(fits, str) and refused is None
    assert isinstance(recounted, str)  # counted afresh: 3 open offers' collateral + this one
    with Session(engine) as session:
        assert len(session.exec(select(SignedOrder)).all()) == 6


def test_duplicates_and_another_owners_meter_are_refused(world):
    settings, engine, account_id = world
    other_meter = eip712.default_meter_id("0x" + "77" * 20)
    orders = [offer(1), offer(1), offer(2, meter=other_meter)]
    outcomes = asyncio.run(submit_all([writer(settings)], account_id, orders))
    assert isinstance(outcomes[0], str)
    assert isinstance(outcomes[1], DuplicateOrder)  # the same order twice in one batch
    assert isinstance(outcomes[2], MeterNotOwned)
    again = asyncio.run(submit_all([writer(settings)], account_id, [offer(1)]))
    assert isinstance(again[0], DuplicateOrder)  # and once it is stored
    assert stored_collateral(engine)[0] == 1


def test_a_mirror_behind_the_chain_or_a_stale_nonce_hands_the_order_back(world):
    settings, engine, account_id = world

    async def scenario():
        one = writer(settings)
        try:
            behind = await one.submit(pending(account_id, offer(1), head=(NOW, HEAD_BLOCK + 1)))
            stale = await one.submit(pending(account_id, offer(2, nonce=4)))
            return behind, stale
        finally:
            await one.close()

    assert asyncio.run(scenario()) == (None, None)
    assert stored_collateral(engine)[0] == 0


def test_reserved_collateral_in_sql_is_intakes_sum(world):
    """The writer's SQL aggregate and `intake.reserved_collateral` agree on random open offers
    (partly matched, some overmatched; large values that overflow 64-bit products)."""
    settings, engine, account_id = world
    rng = random.Random(16)
    with Session(engine) as session:
        for i in range(60):
            quantity = rng.choice([1, 999, 10_001, rng.randrange(1, 2**40)])
            row = intake.row_of(
                offer(1_000 + i, quantity=quantity).replace(price=rng.randrange(1, 2**40)),
                account_id=account_id,
                custodial=False,
                digest=f"0x{i:064x}",
                signature=b"\x01" * 65,
            )
            row.matched_wh = rng.choice([0, quantity // 3, quantity + 5])
            session.add(row)
        session.commit()
        expected = intake.reserved_collateral(session, MAKER.lower(), TERMS)
    sql = asyncio.run(reserved_in_sql(settings))
    assert sql == expected > 0


async def reserved_in_sql(settings: Settings) -> int:
    conninfo = libpq_conninfo(settings.database_url)
    assert conninfo is not None
    async with await psycopg.AsyncConnection.connect(conninfo) as connection:
        cursor = await connection.execute(
            RESERVED_COLLATERAL,
            {
                "makers": [MAKER.lower()],
                "after": [0],
                "open": OrderStatus.OPEN.value,
                "sell": eip712.SELL,
                "energy": eip712.ENERGY,
            },
        )
        ((_, total, _, _, _),) = await cursor.fetchall()
    return int(total)


def test_a_batch_sends_its_order_events_to_the_stream_after_commit_once(world, redis_client):
    """The writer publishes what it committed itself, as the outbox relay would (the same
    fields), and marks the rows published, so no relay sends them again."""
    settings, engine, account_id = world
    settings = settings.model_copy(update={"redis_url": TEST_REDIS_URL})
    outcomes = asyncio.run(submit_all([writer(settings)], account_id, [offer(s) for s in range(3)]))
    assert all(isinstance(o, str) for o in outcomes)

    entries = redis_client.xrange(settings.outbox_stream)

    with Session(engine) as session:
        rows = session.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [row.published_at is not None for row in rows] == [True] * 3
    assert [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries] == [
        {
            "id": str(row.id),
            "topic": "order.placed",
            "block_number": "0",
            "payload": json.dumps(row.payload),
        }
        for row in rows
    ]
    assert sorted(json.loads(f[b"payload"])["order_hash"] for _, f in entries) == sorted(outcomes)
    relay = OutboxPublisher(engine, RedisStreamSink(TEST_REDIS_URL, settings.outbox_stream))
    assert relay.publish_pending() == 0  # nothing left for the relay
    assert redis_client.xlen(settings.outbox_stream) == 3


def test_events_the_stream_did_not_take_are_left_to_the_relay(world, redis_client):
    """Redis refuses the send (nothing listens at the URL): the orders are stored and
    answered all the same, and their rows stay unpublished for the next relay."""
    settings, engine, account_id = world
    settings = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    outcomes = asyncio.run(submit_all([writer(settings)], account_id, [offer(s) for s in range(2)]))
    assert all(isinstance(o, str) for o in outcomes)
    with Session(engine) as session:
        rows = session.exec(select(OutboxMessage)).all()
    assert len(rows) == 2 and all(row.published_at is None for row in rows)
    relay = OutboxPublisher(engine, RedisStreamSink(TEST_REDIS_URL, settings.outbox_stream))
    assert relay.publish_pending() == 2


def test_a_stored_row_and_its_event_are_what_the_sync_intake_stores(world):
    settings, engine, account_id = world
    order = offer(7)
    (stored_id,) = asyncio.run(submit_all([writer(settings)], account_id, [order]))
    expected = intake.row_of(
        order, account_id=account_id, custodial=False, digest=stored_id, signature=b"\x01" * 65
    )
    with Session(engine) as session:
        row = session.exec(select(SignedOrder)).one()
        event = session.exec(select(OutboxMessage)).one()
    ignore = {"seq", "created_at", "updated_at"}
    assert row.model_dump(exclude=ignore) == expected.model_dump(exclude=ignore)
    assert row.created_at == row.updated_at
    assert event.topic == "order.placed" and event.block_number == 0
    assert event.payload == order_events.payload_of(row)


def test_a_batch_is_stored_in_queue_order_each_row_and_event_as_the_sync_intake_would(world):
    settings, engine, account_id = world
    orders = [offer(100 + s, quantity=QUANTITY - s) for s in range(4)]
    ids = asyncio.run(submit_all([writer(settings)], account_id, orders))
    assert all(isinstance(i, str) for i in ids)
    with Session(engine) as session:
        rows = session.exec(select(SignedOrder).order_by(col(SignedOrder.seq))).all()
        events = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
    assert [row.order_hash for row in rows] == ids  # seq follows the queue
    assert [event.payload["order_hash"] for event in events] == ids
    ignore = {"seq", "created_at", "updated_at"}
    for order, order_id, row, event in zip(orders, ids, rows, events, strict=True):
        expected = intake.row_of(
            order, account_id=account_id, custodial=False, digest=order_id, signature=b"\x01" * 65
        )
        assert row.model_dump(exclude=ignore) == expected.model_dump(exclude=ignore)
        assert event.payload == order_events.payload_of(row)
    assert len({row.created_at for row in rows}) == 1

"""Bids and REC offers on the group commit (backend/market/order_writer.py,
backend/market/batch_funds.py), on a real PostgreSQL schema with a current mirror: bids that
together overspend the mirrored allowance, or REC offers the mirrored holding of one
certificate, are accepted exactly as far as it goes (the rest are handed to the chain), with one
writer or two; an order without a mirrored allowance or operator approval is handed back; the
SQL sums of what open bids and REC offers reserve (with the mirror's fills) are intake's."""

from __future__ import annotations

import asyncio
import random

import pytest
from sqlmodel import Session, select

from backend.market import intake
from backend.market import orders as eip712
from backend.market.batch_funds import RESERVED_MIRRORED
from backend.market.models import OrderStatus, SignedOrder
from indexer.models import Holding, MarketOrder, OperatorApproval, TokenAllowance, TokenBalance
from tests.backend.market.test_order_writer import (
    CHAIN_ID,
    MAKER,
    START,
    offer,
    submit_all,
    world,  # noqa: F401 (the fixture `funded` builds on)
    writer,
)

PRICE, QUANTITY = 100_000, 1_000
PAY = eip712.payment(QUANTITY, PRICE)  # 100,000 token units per bid
ALLOWANCE = 5 * PAY + PAY // 2  # five bids fit, not six
CERTIFICATE, OTHER_CERTIFICATE, HELD = 7, 8, 250  # Wh held of CERTIFICATE


def bid(salt: int, *, quantity: int = QUANTITY, price: int = PRICE) -> eip712.Order:
    return offer(salt, quantity=quantity).replace(side=eip712.BUY, price=price)


def rec_offer(salt: int, *, quantity: int = 100, certificate: int = CERTIFICATE) -> eip712.Order:
    return eip712.Order(
        maker=MAKER,
        side=eip712.SELL,
        product=eip712.REC,
        assetId=certificate,
        meterId=intake.NO_METER,
        quantityWh=quantity,
        price=PRICE,
        deliveryStart=0,
        deliveryEnd=0,
        expiry=START - 1,
        nonce=3,
        salt=salt,
    )


@pytest.fixture
def funded(request):
    """`world` with the maker's mirrored GridUSD (ALLOWANCE to the market: the tests' market is
    MAKER, see `pending`) and HELD Wh of CERTIFICATE, the market approved as operator."""
    prepared = request.getfixturevalue("world")
    engine = prepared[1]
    maker = MAKER.lower()
    with Session(engine) as session:
        session.add(TokenBalance(account=maker, balance=10 * PAY, block_number=1))
        session.add(TokenAllowance(owner=maker, spender=maker, allowance=ALLOWANCE, block_number=1))
        session.add(
            Holding(certificate_id=CERTIFICATE, account=maker, balance_wh=HELD, block_number=1)
        )
        session.add(OperatorApproval(account=maker, operator=maker, approved=True, block_number=1))
        session.commit()
    return prepared


def stored(engine) -> list[SignedOrder]:
    with Session(engine) as session:
        return list(session.exec(select(SignedOrder).order_by(SignedOrder.seq)).all())


@pytest.mark.parametrize("workers", [1, 2])
def test_bids_that_overspend_the_allowance_are_accepted_only_as_far_as_it_goes(funded, workers):
    settings, engine, account_id = funded
    writers = [writer(settings) for _ in range(workers)]
    outcomes = asyncio.run(submit_all(writers, account_id, [bid(s) for s in range(12)]))
    assert sum(isinstance(o, str) for o in outcomes) == 5  # ALLOWANCE // PAY
    assert outcomes.count(None) == 7  # handed back: the chain may know a larger allowance
    rows = stored(engine)
    assert len(rows) == 5 and all(row.side == eip712.BUY for row in rows)
    assert sum(eip712.payment(r.quantity_wh, r.price) for r in rows) <= ALLOWANCE
    # and what they reserve counts in the next batch too
    later = asyncio.run(submit_all([writer(settings)], account_id, [bid(20)]))
    assert later == [None]


def test_rec_offers_are_counted_per_certificate_against_the_holding(funded):
    settings, engine, account_id = funded
    orders = [rec_offer(s) for s in range(3)] + [rec_offer(9, certificate=OTHER_CERTIFICATE)]
    outcomes = asyncio.run(submit_all([writer(settings)], account_id, orders))
    assert [isinstance(o, str) for o in outcomes[:3]].count(True) == 2  # 2 x 100 of 250 Wh
    assert outcomes[2] is None  # 300 > 250: the chain decides
    assert outcomes[3] is None  # nothing held of the other certificate
    assert [(r.product, r.asset_id) for r in stored(engine)] == [(eip712.REC, CERTIFICATE)] * 2


def test_energy_offers_bids_and_rec_offers_share_a_batch(funded):
    settings, engine, account_id = funded
    orders = [offer(100), bid(101), rec_offer(102)]
    outcomes = asyncio.run(submit_all([writer(settings)], account_id, orders))
    assert all(isinstance(o, str) for o in outcomes)
    assert sorted((r.side, r.product) for r in stored(engine)) == sorted(
        (o.side, o.product) for o in orders
    )


def test_no_mirrored_allowance_or_operator_approval_hands_the_order_back(funded):
    settings, engine, account_id = funded
    with Session(engine) as session:
        session.delete(session.exec(select(TokenAllowance)).one())
        approval = session.exec(select(OperatorApproval)).one()
        approval.approved = False
        session.add(approval)
        session.commit()
    outcomes = asyncio.run(submit_all([writer(settings)], account_id, [bid(1), rec_offer(2)]))
    assert outcomes == [None, None]
    assert stored(engine) == []


def test_reserved_bids_and_rec_offers_in_sql_are_intakes_sums(funded):
    """The writer's SQL sums and `intake.reserved(mirrored_fills=True)` agree on random open
    bids and REC offers, partly filled on the mirror (some beyond their quantity)."""
    _, engine, account_id = funded
    rng = random.Random(10)
    with Session(engine) as session:
        for i in range(80):
            quantity = rng.choice([1, 999, rng.randrange(1, 2**40)])
            order = (
                bid(1_000 + i, quantity=quantity, price=rng.randrange(1, 2**40))
                if i % 2
                else rec_offer(1_000 + i, quantity=quantity, certificate=rng.choice([7, 8]))
            )
            digest = f"0x{i:064x}"
            row = intake.row_of(
                order, account_id=account_id, custodial=False, digest=digest, signature=b"\1" * 65
            )
            row.status = rng.choice([OrderStatus.OPEN] * 3 + [OrderStatus.CANCELLED])
            session.add(row)
            if rng.random() < 0.6:
                filled = rng.choice([quantity // 3, quantity, quantity + 5])
                session.add(
                    MarketOrder(
                        order_hash=digest, chain_id=CHAIN_ID, filled_wh=filled, block_number=1
                    )
                )
        session.commit()
        maker = MAKER.lower()
        expected = [
            intake.reserved(session, maker, side=eip712.BUY, mirrored_fills=True),
            intake.reserved(session, maker, side=eip712.SELL, asset_id=7, mirrored_fills=True),
            intake.reserved(session, maker, side=eip712.SELL, asset_id=8, mirrored_fills=True),
        ]
        connection = session.connection().connection.driver_connection
        actual = []
        for bids, side, asset in (
            (True, eip712.BUY, 0),
            (False, eip712.SELL, 7),
            (False, eip712.SELL, 8),
        ):
            cursor = connection.execute(
                RESERVED_MIRRORED,
                {
                    "makers": [maker],
                    "assets": [asset],
                    "after": [0],
                    "open": OrderStatus.OPEN.value,
                    "bids": bids,
                    "side": side,
                    "rec": eip712.REC,
                },
            )
            ((_, _, total, _),) = cursor.fetchall()
            actual.append(int(total))
    assert actual == expected and all(expected)

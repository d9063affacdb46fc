"""POST /v1/trading/orders under concurrency, on Anvil + PostgreSQL with a current mirror: a
wallet's energy offers that together overspend its free market balance, posted at once, are
accepted exactly as far as the balance covers their collateral (the group commit stores them;
the rest are refused with `insufficient-collateral` after the chain is asked), and what the
stored offers lock never exceeds what the wallet holds in the market."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlmodel import Session, select

from backend.chain.contracts import chain_for
from backend.market.models import SignedOrder
from backend.market.order_writer import all_writers
from backend.market.orders import BPS, collateral
from indexer.models import MarketParameter
from scripts.workload import DEPOSIT
from tests.fixtures.api import signed_wallet_order
from tests.fixtures.indexing import catch_up

OFFERS, FITTING = 8, 3


def test_concurrent_wallet_offers_that_overspend_are_accepted_only_as_far_as_collateral_goes(
    market,
):
    client, wallet, headers = market["client"], market["wallet"], market["buyer"]
    contract = chain_for(market["api"].settings).market.functions
    free = contract.withdrawable(wallet.address).call()
    assert free == DEPOSIT
    terms = (contract.toleranceBps().call(), contract.penaltyBps().call())
    price = 100_000
    # each offer locks 30 % of the free balance: three fit, the fourth does not
    quantity = free * 3 // 10 * 1000 * BPS * BPS // (price * (BPS - terms[0]) * terms[1])
    each = collateral(quantity, price, *terms)
    assert FITTING * each <= free < (FITTING + 1) * each
    bodies = [
        signed_wallet_order(
            client,
            headers,
            wallet,
            side="sell",
            delivery_start=market["period"],
            quantity_wh=quantity,
            price=price,
        )[1]
        for _ in range(OFFERS)
    ]
    catch_up(market["indexer"])  # the mirror is current: the writer takes the offers
    with Session(market["api"].engine) as session:  # from the market's deployment (its events)
        assert session.get(MarketParameter, "tolerance_bps").value == terms[0]
        assert session.get(MarketParameter, "penalty_bps").value == terms[1]

    with ThreadPoolExecutor(OFFERS) as pool:
        replies = list(
            pool.map(
                lambda body: client.post("/v1/trading/orders", headers=headers, json=body), bodies
            )
        )

    accepted = [r for r in replies if r.status_code == 202]
    refused = [r for r in replies if r.status_code != 202]
    assert len(accepted) == FITTING, [r.text for r in replies]
    assert all(r.status_code == 422 for r in refused)
    assert all(r.json()["type"].endswith("/insufficient-collateral") for r in refused)
    assert all(r.json()["available"] == str(free) for r in refused)
    assert sum(w.stored for w in all_writers()) == FITTING  # group-committed, not the sync path
    with Session(market["api"].engine) as session:
        stored = session.exec(select(SignedOrder)).all()
    assert sorted(row.order_hash for row in stored) == sorted(r.json()["id"] for r in accepted)
    assert sum(collateral(row.quantity_wh, row.price, *terms) for row in stored) <= free
    for reply in accepted:  # what each answer names is there to poll
        polled = client.get(reply.json()["poll"], headers=headers)
        assert polled.status_code == 200 and polled.json()["status"] == "open"

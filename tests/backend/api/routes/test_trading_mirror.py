"""A wallet's bids and REC offers through POST /v1/trading/orders on Anvil + PostgreSQL, checked
on the indexer's mirror of its GridUSD allowance and its operator approval: with a current
mirror a bid is stored without a chain call; a bid beyond the allowance, and any order after
its approval was revoked, gets the same problem as when the chain is asked (the mirror's
refusal is never final: the chain is asked, once), and a bid the mirror refuses but the chain
allows is accepted."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, select

from backend.chain.contracts import Chain, chain_for
from backend.market import intake, mirror_state
from backend.market import orders as eip712
from backend.market.models import SignedOrder
from indexer.models import TokenAllowance
from tests.fixtures.api import signed_wallet_order
from tests.fixtures.indexing import catch_up

PRICE = 100_000  # per kWh: 1,000 Wh pay 100,000


@pytest.fixture
def chain_calls(monkeypatch) -> list[str]:
    """The name of every chain call the API makes (reads, the clock, calls), in order; intake
    (the sync intake and the group commit) takes a head up to a minute old, so a slow test
    machine does not send it to the chain."""
    calls: list[str] = []
    for name in ("read", "now", "call"):
        original = getattr(Chain, name)

        def counted(chain: Chain, *args: Any, _name=name, _original=original, **kwargs: Any):
            calls.append(_name)
            return _original(chain, *args, **kwargs)

        monkeypatch.setattr(Chain, name, counted)
    monkeypatch.setattr(intake, "CLOCK_MAX_AGE_S", 60.0)
    monkeypatch.setattr(mirror_state, "CLOCK_MAX_AGE_S", 60.0)
    return calls


def order(market, **terms) -> dict:
    _, body = signed_wallet_order(market["client"], market["buyer"], market["wallet"], **terms)
    return body


def bid(market, quantity_wh: int = 1_000) -> dict:
    terms = {"delivery_start": market["period"], "quantity_wh": quantity_wh, "price": PRICE}
    return order(market, side="buy", **terms)


def post(market, body: dict):
    return market["client"].post("/v1/trading/orders", headers=market["buyer"], json=body)


def on_chain(market, *transactions) -> None:
    """Send the wallet's `transactions` (contract function calls), then index them."""
    workload = market["api"].devnet.workload
    for call in transactions:
        workload.tx(market["wallet"], call)


def test_a_bid_is_stored_on_the_mirror_without_a_chain_call(market, chain_calls):
    body = bid(market)  # the typed-data document reads the chain (nonce) and its clock
    catch_up(market["indexer"])
    before = len(chain_calls)

    placed = post(market, body)

    assert placed.status_code == 202, placed.text
    assert chain_calls[before:] == []


def test_a_bid_beyond_the_mirrored_allowance_gets_the_chains_problem(market, chain_calls):
    api = market["api"]
    c = api.devnet.workload.c
    on_chain(market, c.token.functions.approve(c.market.address, 150_000))
    within, beyond = bid(market), bid(market)  # 100,000 each (two salts): 200,000
    catch_up(market["indexer"])

    before = len(chain_calls)
    stored = post(market, within)
    assert stored.status_code == 202, stored.text
    assert chain_calls[before:] == []  # on the mirror
    # the stored bid reserves 100,000 of the 150,000: the mirror refuses the next 100,000 and
    # the chain is asked, which refuses it
    refused = post(market, beyond)
    assert refused.status_code == 422, refused.text
    assert chain_calls[before:] == ["read"]
    problem = refused.json()
    assert problem["type"].endswith("/insufficient-funds")
    assert "need 200000" in problem["detail"] and "allowance 150000" in problem["detail"]

    # the same bid while the mirror is behind the chain: intake asks the chain alone
    api.devnet.node.request("anvil_mine", [1])
    chain_for(api.settings).now()
    behind = post(market, beyond)
    assert behind.status_code == 422
    assert behind.content == refused.content


def test_orders_after_the_approvals_are_revoked_are_refused(market, chain_calls):
    api, wallet = market["api"], market["wallet"]
    workload = api.devnet.workload
    c, registry = workload.c, workload.c.registry.functions
    (certificate,) = workload.issue(batch=1)
    holder = next(p for p in workload.people if registry.balanceOf(p.address, certificate).call())
    if holder != wallet:
        workload.tx(
            holder,
            registry.safeTransferFrom(holder.address, wallet.address, certificate, 100, b""),
        )
    on_chain(
        market,
        c.token.functions.approve(c.market.address, 0),
        registry.setApprovalForAll(c.market.address, False),
    )
    rec_terms = {"side": "sell", "product": "rec", "asset_id": certificate, "price": 20_000}
    bodies = [bid(market), order(market, quantity_wh=100, **rec_terms)]
    catch_up(market["indexer"])
    chain_for(api.settings).now()  # the clock at the indexed head: the mirror is current

    for body in bodies:
        before = len(chain_calls)
        refused = post(market, body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["type"].endswith("/insufficient-funds")
        assert chain_calls[before:] == ["read"]  # the mirror refused: the chain was asked
    assert "market approved: False" in refused.json()["detail"]

    on_chain(
        market,
        c.token.functions.approve(c.market.address, 10**9),
        registry.setApprovalForAll(c.market.address, True),
    )
    bodies = [bid(market), order(market, quantity_wh=100, **rec_terms)]
    catch_up(market["indexer"])
    before = len(chain_calls)
    for body in bodies:
        placed = post(market, body)
        assert placed.status_code == 202, placed.text
    assert chain_calls[before:] == []


def test_a_bid_the_mirror_refuses_and_the_chain_allows_is_accepted(market, chain_calls):
    """The mirrored allowance may lag below the chain's (a pull seen before the Approval that
    raised it): the group commit hands the bid back, the chain is asked once and accepts it."""
    api = market["api"]
    body = bid(market)
    catch_up(market["indexer"])
    with Session(api.engine) as session:
        for allowance in session.exec(select(TokenAllowance)).all():
            allowance.allowance, allowance.unlimited = 0, False
            session.add(allowance)
        session.commit()
    before = len(chain_calls)

    placed = post(market, body)

    assert placed.status_code == 202, placed.text
    assert chain_calls[before:] == ["read"]
    with Session(api.engine) as session:
        row = session.exec(select(SignedOrder).where(SignedOrder.order_hash == placed.json()["id"]))
        assert row.one().side == eip712.BUY

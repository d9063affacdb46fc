"""The matcher: the pure planner never pairs different markets or periods, and on Anvil +
PostgreSQL a jamming order (its match always reverts) neither stops honest orders behind it
from trading in the same round nor stays in the book past `match_failure_limit` rounds."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select

from backend.chain.contracts import Chain
from backend.market import orders as eip712
from backend.market.matching import market_of, plan_matches
from backend.market.models import OrderStatus, SignedOrder
from indexer.models import OutboxMessage
from tests.fixtures.api import match, siwe_sign_in, wallet_bid
from tests.fixtures.contract_wallets import deploy_contract_wallet, signed_siwe
from tests.fixtures.orders import order_row

SLOT = eip712.SLOT_SECONDS
MAKERS = [f"0x{n:040x}" for n in range(1, 4)]


def row(seq: int, **fields: Any) -> SignedOrder:
    """An order for the pure planner: an energy order of the first slot unless told."""
    defaults = {"maker": MAKERS[seq % 3], "delivery_start": SLOT, "delivery_end": 2 * SLOT}
    return order_row(seq=seq, order_hash=f"0x{seq:064x}", **{**defaults, **fields})


@st.composite
def orders(draw) -> list[SignedOrder]:
    """Orders of a few makers across two products, two start slots and several period ends."""
    count = draw(st.integers(min_value=0, max_value=14))
    drawn = []
    for seq in range(1, count + 1):
        product = draw(st.sampled_from([eip712.ENERGY, eip712.REC]))
        start = draw(st.sampled_from([SLOT, 2 * SLOT])) if product == eip712.ENERGY else 0
        end = start + draw(st.sampled_from([1, 2, 4])) * SLOT if product == eip712.ENERGY else 0
        quantity = draw(st.integers(min_value=1, max_value=50))
        drawn.append(
            row(
                seq,
                maker=draw(st.sampled_from(MAKERS)),
                side=draw(st.sampled_from([eip712.BUY, eip712.SELL])),
                product=product,
                asset_id=draw(st.sampled_from([1, 2])) if product == eip712.REC else 0,
                quantity_wh=quantity,
                matched_wh=draw(st.integers(min_value=0, max_value=quantity - 1)),
                price=draw(st.integers(min_value=1, max_value=5)),
                delivery_start=start,
                delivery_end=end,
            )
        )
    return drawn


@settings(max_examples=300, deadline=None)
@given(orders(), st.data())
def test_the_planner_pairs_only_orders_of_one_exact_period(book, data):
    skip = frozenset(
        data.draw(st.sets(st.tuples(*[st.sampled_from([o.order_hash for o in book] or ["x"])] * 2)))
    )
    matches = plan_matches(book, skip=skip)
    used: Counter[str] = Counter()
    for planned in matches:
        bid, offer = planned.bid, planned.offer
        assert (bid.product, bid.asset_id, bid.delivery_start, bid.delivery_end) == (
            offer.product,
            offer.asset_id,
            offer.delivery_start,
            offer.delivery_end,
        )
        assert (bid.side, offer.side) == (eip712.BUY, eip712.SELL)
        assert bid.maker != offer.maker and bid.price >= offer.price
        assert (bid.order_hash, offer.order_hash) not in skip
        assert planned.price == (bid.price if bid.seq < offer.seq else offer.price)  # resting
        used[bid.order_hash] += planned.quantity_wh
        used[offer.order_hash] += planned.quantity_wh
    for order in book:
        assert used[order.order_hash] <= order.quantity_wh - order.matched_wh
    # the plan of each market alone is the same: markets do not affect each other
    for key in {market_of(o) for o in book}:
        alone = plan_matches([o for o in book if market_of(o) == key], skip=skip)
        assert [m.key for m in alone] == [m.key for m in matches if market_of(m.bid) == key]


def test_a_longer_period_in_the_same_start_slot_is_another_market():
    # cheapest, but for half an hour: the contract would refuse it with any quarter-hour bid
    jammer = row(1, side=eip712.SELL, price=1, delivery_end=3 * SLOT)
    offer, bid = row(2, side=eip712.SELL, price=50), row(3, side=eip712.BUY, price=60)
    (planned,) = plan_matches([jammer, offer, bid])
    assert (planned.bid, planned.offer, planned.quantity_wh) == (bid, offer, 1_000)


# ------------------------------------------------------------------ on Anvil + PostgreSQL


@pytest.fixture
def trading(chain_api):
    """Three wallet accounts signed in (gUSD funded, market approved) and the next period."""
    devnet = chain_api.devnet
    people = devnet.workload.people[:3]
    headers = [
        siwe_sign_in(chain_api.client, p, chain_id=chain_api.settings.chain_id) for p in people
    ]
    period = (devnet.workload.now() // SLOT + 2) * SLOT
    return chain_api, list(zip(people, headers, strict=True)), period


def place(api, maker, **terms) -> str:
    """A wallet order through the API (intake checks funds, nonce and signature); its hash."""
    wallet, headers = maker
    order_hash, reply = wallet_bid(api.client, headers, wallet, **terms)
    assert reply.status_code == 202, reply.text
    return order_hash


def stored(api, order_hash: str) -> SignedOrder:
    with Session(api.engine) as session:
        return session.exec(
            select(SignedOrder).where(col(SignedOrder.order_hash) == order_hash)
        ).one()


def filled_on_chain(api, order_hash: str) -> int:
    return api.devnet.workload.c.market.functions.filled(bytes.fromhex(order_hash[2:])).call()


def left_the_book(api, order_hash: str) -> bool:
    """An `order.cancelled` message for the order is in the outbox (the feed's book delta)."""
    with Session(api.engine) as session:
        payloads = session.exec(
            select(OutboxMessage.payload).where(col(OutboxMessage.topic) == "order.cancelled")
        ).all()
    return any(payload["order_hash"] == order_hash for payload in payloads)


def test_a_bid_whose_payment_reverts_neither_blocks_honest_bids_nor_stays(trading):
    api, (seller, jammer, honest), period = trading
    workload = api.devnet.workload
    energy = {"product": "energy", "delivery_start": period}
    offer = place(api, seller, side="sell", quantity_wh=10_000, price=100_000, **energy)
    jam = place(api, jammer, side="buy", quantity_wh=1_000_000, price=200_000, **energy)
    # intake saw the allowance; revoked now, every match of the huge top bid reverts
    workload.tx(jammer[0], workload.c.token.functions.approve(workload.c.market.address, 0))
    bid = place(api, honest, side="buy", quantity_wh=2_000, price=120_000, **energy)

    assert len(match(api)) == 1  # the honest bid trades in the round the jammer fails
    assert filled_on_chain(api, bid) == 2_000 and filled_on_chain(api, offer) == 2_000
    assert (stored(api, jam).status, stored(api, jam).match_failures) == (OrderStatus.OPEN, 1)
    assert match(api) == [] and match(api) == []  # the offer's rest keeps tempting it
    withdrawn = stored(api, jam)
    assert (withdrawn.status, withdrawn.match_failures) == (OrderStatus.WITHDRAWN, 3)
    assert match(api) == [] and stored(api, jam).match_failures == 3  # not simulated again

    mine = api.client.get(f"/v1/trading/orders/{jam}", headers=jammer[1]).json()
    assert mine["status"] == "withdrawn" and mine["remaining_wh"] == "0"
    assert "3 matches" in mine["withdrawn_reason"]
    assert "ERC20InsufficientAllowance" in mine["withdrawn_reason"]
    listed = api.client.get("/v1/trading/orders", headers=jammer[1]).json()["items"]
    assert listed[0]["withdrawn_reason"] == mine["withdrawn_reason"]
    assert left_the_book(api, jam)
    book = api.client.get("/v1/trading/orderbook", params={"market_id": f"energy-{period}"})
    assert book.json()["bids"] == []
    assert book.json()["asks"] == [{"price": "100000", "quantity_wh": "8000", "orders": 1}]
    # the honest bid was never blamed
    assert stored(api, bid).match_failures == 0 and stored(api, offer).match_failures == 0


def test_an_offer_for_a_longer_period_in_the_same_slot_does_not_jam(trading, monkeypatch):
    api, (seller, jammer, honest), period = trading
    simulated = []
    call = Chain.call

    def counted(chain, function_call, **fields):
        simulated.append(function_call.args)
        return call(chain, function_call, **fields)

    monkeypatch.setattr(Chain, "call", counted)
    energy = {"product": "energy", "delivery_start": period}
    jam = place(
        api, jammer, side="sell", quantity_wh=1_000_000, price=1, delivery_end=period + 2 * SLOT,
        **energy,
    )  # fmt: skip
    offer = place(api, seller, side="sell", quantity_wh=5_000, price=100_000, **energy)
    bid = place(api, honest, side="buy", quantity_wh=3_000, price=120_000, **energy)

    assert len(match(api)) == 1
    assert filled_on_chain(api, bid) == 3_000 and filled_on_chain(api, offer) == 3_000
    assert len(simulated) == 1  # never planned against the quarter-hour bid, never simulated
    untouched = stored(api, jam)
    assert (untouched.status, untouched.match_failures, untouched.matched_wh) == ("open", 0, 0)


def test_a_rec_buyer_whose_receiver_reverts_is_found_by_trying_other_counterparties(trading):
    """Its revert blames the seller (`ERC1155InsufficientBalance(seller)`): a contract buyer's
    revert data is not trusted, each order is tried against another counterparty instead."""
    api, (first, second, third), _ = trading
    workload, registry = api.devnet.workload, api.devnet.workload.c.registry
    (cert,) = workload.issue(batch=1)
    makers = [first, second, third]
    holder = next(m for m in makers if registry.functions.balanceOf(m[0].address, cert).call())
    volume = registry.functions.balanceOf(holder[0].address, cert).call()
    honest = next(m for m in makers if m is not holder)
    # a contract wallet whose ERC-1155 hook reverts with a forged error naming the seller
    owner = next(m for m in makers if m not in (holder, honest))[0]
    wallet = deploy_contract_wallet(api.devnet, owner, contract="CertificateRefusingWallet")
    tokens = api.client.post(
        "/v1/auth/siwe/verify",
        json=signed_siwe(api.client, wallet, owner, chain_id=api.settings.chain_id),
    ).json()
    refusing = (owner, {"Authorization": f"Bearer {tokens['access_token']}"})
    rec = {"product": "rec", "asset_id": cert}
    offer = place(api, holder, side="sell", quantity_wh=volume, price=100, **rec)
    jam = place(api, refusing, side="buy", quantity_wh=volume, price=500, **rec)

    for failures in (1, 2, 3):  # each round an honest buyer comes, and trades at once
        bid = place(api, honest, side="buy", quantity_wh=30, price=200, **rec)
        assert len(match(api)) == 1
        assert filled_on_chain(api, bid) == 30
        assert stored(api, jam).match_failures == failures
    assert filled_on_chain(api, offer) == 90
    assert stored(api, jam).status == OrderStatus.WITHDRAWN and left_the_book(api, jam)
    assert stored(api, offer).match_failures == 0  # the seller was never blamed

"""The allowance and operator-approval mirror (indexer/handlers/allowances.py).

On Anvil: it follows `approve`, the market's pulls (a deposit, an ENERGY fill's escrow, a REC
swap paying the seller), a transfer sent to the market directly (lower than the chain, never
higher), an unlimited approval, `setApprovalForAll` and its revocation, and a reorg that takes
an approval away. With logs made up in a REC swap's order: an `Approval` the buyer sends from
its `onERC1155Received` between the swap's event and its pull is counted less that pull."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from backend.core.db import make_engine
from backend.market import orders as eip712
from indexer.handlers import Log, handler_for, load_handlers
from indexer.handlers.allowances import MAX_UINT256
from indexer.mirror import MirrorState
from indexer.models import OperatorApproval, TokenAllowance


def mirrored(market, owner: str) -> TokenAllowance | None:
    spender = market.devnet.workload.c.market.address.lower()
    with Session(market.engine) as session:
        return session.get(TokenAllowance, (owner.lower(), spender))


def on_chain(market, owner: str) -> int:
    c = market.devnet.workload.c
    return c.token.functions.allowance(owner, c.market.address).call()


def approved_operator(market, account: str) -> bool | None:
    operator = market.devnet.workload.c.market.address.lower()
    with Session(market.engine) as session:
        row = session.get(OperatorApproval, (account.lower(), operator))
        return None if row is None else row.approved


def follows_chain(market, owner: str, *, below_by: int = 0) -> int:
    """Index up to the head; the mirrored allowance of `owner` to the market, checked against
    the chain's (less `below_by`, what transfers sent to the market directly took off it)."""
    market.catch_up()
    row = mirrored(market, owner)
    assert row is not None and not row.unlimited
    assert row.allowance == on_chain(market, owner) - below_by
    return row.allowance


def test_mirror_follows_approve_and_the_markets_pulls(market):
    w = market.devnet.workload
    token, energy_market, registry = w.c.token.functions, w.c.market.functions, w.c.registry
    seller, buyer = w.people[0], w.people[1]
    w.tx(buyer, token.approve(w.c.market.address, 50_000_000))
    assert follows_chain(market, buyer.address) == 50_000_000

    w.tx(buyer, energy_market.deposit(1_000_000))  # pulled into the market
    assert follows_chain(market, buyer.address) == 49_000_000

    offer = w.order(seller, eip712.SELL, quantity=4_000)  # an ENERGY fill: the taker's escrow
    signature = eip712.sign_order(offer, seller.key, w.chain_id, w.c.market.address)
    w.tx(
        buyer,
        energy_market.fillOrder(
            offer.as_tuple(), signature, 4_000, eip712.default_meter_id(buyer.address)
        ),
    )
    escrow = eip712.payment(4_000, offer.price)
    assert follows_chain(market, buyer.address) == 49_000_000 - escrow

    (certificate,) = w.issue(batch=1)  # a REC swap: the market pays the seller from the buyer
    holder = next(
        p for p in w.people if registry.functions.balanceOf(p.address, certificate).call()
    )
    if holder == buyer:
        holder = seller
        w.tx(
            buyer,
            registry.functions.safeTransferFrom(
                buyer.address, seller.address, certificate, 50, b""
            ),
        )
    rec_offer = w.order(holder, eip712.SELL, product=eip712.REC, asset_id=certificate, quantity=50)
    signature = eip712.sign_order(rec_offer, holder.key, w.chain_id, w.c.market.address)
    w.tx(buyer, energy_market.fillOrder(rec_offer.as_tuple(), signature, 50, b"\0" * 32))
    swapped = eip712.payment(50, rec_offer.price)
    assert follows_chain(market, buyer.address) == 49_000_000 - escrow - swapped

    # sent to the market directly: the chain's allowance stays, the mirror's goes down
    w.tx(buyer, token.transfer(w.c.market.address, 700))
    assert follows_chain(market, buyer.address, below_by=700) == 49_000_000 - escrow - swapped - 700

    w.tx(buyer, token.approve(w.c.market.address, MAX_UINT256))
    w.tx(buyer, energy_market.deposit(1_000))
    market.catch_up()
    row = mirrored(market, buyer.address)
    assert row is not None and row.unlimited and on_chain(market, buyer.address) == MAX_UINT256


def test_mirror_follows_set_approval_for_all_and_its_revocation(market):
    w = market.devnet.workload
    registry, maker = w.c.registry.functions, w.people[2]
    market.catch_up()
    assert approved_operator(market, maker.address) is True  # the workload's setup approved
    w.tx(maker, registry.setApprovalForAll(w.c.market.address, False))
    market.catch_up()
    assert approved_operator(market, maker.address) is False
    assert not registry.isApprovedForAll(maker.address, w.c.market.address).call()
    w.tx(maker, registry.setApprovalForAll(w.c.market.address, True))
    market.catch_up()
    assert approved_operator(market, maker.address) is True


def test_a_reorg_takes_an_approval_back(market):
    w, node = market.devnet.workload, market.devnet.node
    token, owner = w.c.token.functions, w.people[3]
    w.tx(owner, token.approve(w.c.market.address, 123_000))
    assert follows_chain(market, owner.address) == 123_000
    snapshot = node.request("evm_snapshot")
    w.tx(owner, token.approve(w.c.market.address, 456_000))
    w.tx(owner, w.c.market.functions.deposit(6_000))
    assert follows_chain(market, owner.address) == 450_000

    node.request("evm_revert", [snapshot])
    w.nonces.clear()
    node.request("anvil_mine", [3])
    assert follows_chain(market, owner.address) == 123_000
    assert market.indexer.metrics.reorgs == 1


# ------------------------------------------------------------------ logs of one swap

MARKET, TOKEN, OTHER = "0x" + "4d" * 20, "0x" + "70" * 20, "0x" + "0e" * 20
BUYER, SELLER = "0x" + "b0" * 20, "0x" + "5e" * 20
ZERO32 = "0x" + "00" * 32


def _log(contract: str, event: str, address: str, tx: str, index: int, **args) -> Log:
    return Log(
        contract=contract,
        event=event,
        args=args,
        address=address,
        block_number=10,
        block_hash=ZERO32,
        block_timestamp=1,
        tx_hash=tx,
        log_index=index,
    )


def approval(tx: str, index: int, value: int, spender: str = MARKET) -> Log:
    return _log("GridUSD", "Approval", TOKEN, tx, index, owner=BUYER, spender=spender, value=value)


def transfer(tx: str, index: int, to: str, value: int) -> Log:
    return _log(
        "GridUSD", "Transfer", TOKEN, tx, index, **{"from": BUYER, "to": to, "value": value}
    )


def swap(tx: str, index: int, payment: int) -> Log:
    return _log(
        "EnergyMarket",
        "CertificatesTraded",
        MARKET,
        tx,
        index,
        tradeId=index,
        sellOrderHash=ZERO32,
        buyOrderHash=ZERO32,
        seller=SELLER,
        buyer=BUYER,
        certificateId=1,
        quantityWh=10,
        price=30_000,
        payment=payment,
    )


@pytest.mark.parametrize(
    ("logs", "expected"),
    [
        ([swap("0x2", 0, 300), transfer("0x2", 2, SELLER, 300)], (700, False)),
        # the buyer's onERC1155Received approves 500: the pull after it leaves 200 on chain
        (
            [swap("0x2", 0, 300), approval("0x2", 1, 500), transfer("0x2", 2, SELLER, 300)],
            (200, False),
        ),
        # an approval after the pull is the allowance as it is
        (
            [swap("0x2", 0, 300), transfer("0x2", 2, SELLER, 300), approval("0x2", 3, 500)],
            (500, False),
        ),
        (
            [approval("0x2", 0, MAX_UINT256), swap("0x2", 1, 300), transfer("0x2", 2, SELLER, 300)],
            (2**63 - 1, True),
        ),
        ([transfer("0x2", 0, MARKET, 100)], (900, False)),  # into the market: a pull, or sent
        ([transfer("0x2", 0, OTHER, 100)], (1_000, False)),  # elsewhere: not the market's pull
    ],
)
def test_an_allowance_counts_each_pull_once_where_the_chain_does(fresh_pg_url, logs, expected):
    load_handlers()
    engine = make_engine(fresh_pg_url)
    try:
        with engine.begin() as connection:
            state = MirrorState(connection, 31337, {MARKET: "EnergyMarket", TOKEN: "GridUSD"})
            for item in [approval("0x1", 0, 1_000), approval("0x1", 1, 9, spender=OTHER), *logs]:
                handler = handler_for(item)
                assert handler is not None
                handler.apply(state, item)
            row = state.get("token_allowances", BUYER, MARKET)
            assert row is not None and (row["allowance"], row["unlimited"]) == expected
            assert state.get("token_allowances", BUYER, OTHER) is None  # not our contract
            state.flush(undo_block=10)
    finally:
        engine.dispose()

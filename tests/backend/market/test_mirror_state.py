"""Intake's chain state from the indexer's mirror (backend/market/mirror_state.py and
`intake.mirrored_state`): a current mirror answers a wallet's energy offer, bid or REC offer
with no chain round trip; a mirror behind the chain head, a stale chain clock, or a bidder whose
allowance the mirror has not seen go to the chain; an order the mirror would refuse — an offer
whose collateral, with what the maker's open offers already reserve, exceeds the mirrored free
balance, a bid beyond the mirrored balance or allowance once the maker's open bids are counted
(their fills as the mirror has seen them), a REC offer without the market's approval, or a nonce
that is not the mirrored one — is sent to the chain as well, never refused on the mirror's
word."""

from __future__ import annotations

import uuid

import pytest
from eth_utils import to_checksum_address

from backend.accounts.models import Account
from backend.core.config import Settings
from backend.market import orders as eip712
from backend.market.errors import InsufficientCollateral
from backend.market.intake import check_funds, mirrored_state, row_of
from backend.market.mirror_state import mirror_state
from backend.market.models import SignedOrder
from indexer.models import Holding, MarketOrder, OperatorApproval, TokenAllowance, TokenBalance
from tests.fixtures.mirror import add_mirror, energy_offer

CHAIN_ID, HEAD_BLOCK, NOW = 31337, 100, 1_900_000_000
MAKER = "0x" + "5e" * 20
MARKET = "0x" + "4d" * 20
START = (NOW // 900 + 4) * 900
TERMS = (500, 2_000)  # tolerance, penalty bps
FREE = 10_000  # mirrored free market balance


@pytest.fixture
def mirror(db_session):
    session = db_session
    add_mirror(
        session,
        chain_id=CHAIN_ID,
        head_block=HEAD_BLOCK,
        maker=MAKER,
        nonce=3,
        free=FREE,
        terms=TERMS,
    )
    session.flush()
    return session


def offer(quantity_wh: int, price: int, *, nonce: int = 3, side: int = eip712.SELL) -> eip712.Order:
    order = energy_offer(
        to_checksum_address(MAKER), quantity_wh=quantity_wh, price=price, start=START, nonce=nonce
    )
    return order.replace(side=side)


def state_of(
    session, order: eip712.Order, *, head=(NOW, HEAD_BLOCK), lag: int = 0, with_reserved=True
):
    settings = Settings(_env_file=None, intake_mirror_max_lag_blocks=lag)
    return mirrored_state(
        session,
        settings,
        order,
        chain_id=CHAIN_ID,
        market=to_checksum_address(MARKET),
        head=head,
        with_reserved=with_reserved,
    )


def read(
    session,
    *,
    side=eip712.SELL,
    product=eip712.ENERGY,
    asset_id=0,
    head=(NOW, HEAD_BLOCK),
    lag=0,
):
    return mirror_state(
        session,
        to_checksum_address(MAKER),
        side=side,
        product=product,
        asset_id=asset_id,
        market=to_checksum_address(MARKET),
        chain_id=CHAIN_ID,
        head=head,
        max_lag_blocks=lag,
    )


def test_a_current_mirror_answers_an_energy_offer(mirror):
    # chain time one second ahead: gate closure and expiry are judged no later than the chain
    assert read(mirror) == (NOW + 1, 3, [FREE, *TERMS])
    state = state_of(mirror, offer(1_000, 10_000))
    assert state is not None and (state.nonce, state.funds) == (3, [FREE, *TERMS])


def test_a_mirror_behind_the_chain_head_sends_intake_to_the_chain(mirror):
    assert read(mirror, head=(NOW, HEAD_BLOCK + 1)) is None
    assert read(mirror, head=(NOW, HEAD_BLOCK + 1), lag=1) is not None  # within the allowed lag
    assert state_of(mirror, offer(1_000, 10_000), head=(NOW, HEAD_BLOCK + 1)) is None


def test_no_recent_chain_clock_or_no_cursor_sends_intake_to_the_chain(mirror, db_session):
    assert read(mirror, head=None) is None
    assert (
        mirror_state(
            db_session,
            MAKER,
            side=eip712.SELL,
            product=eip712.ENERGY,
            asset_id=0,
            market=MARKET,
            chain_id=CHAIN_ID + 1,  # no cursor of this chain
            head=(NOW, 1),
            max_lag_blocks=10**6,
        )
        is None
    )


def test_a_stale_nonce_on_the_mirror_asks_the_chain(mirror):
    # the wallet may have signed under a cancel-all the indexer has not seen yet
    assert state_of(mirror, offer(1_000, 10_000, nonce=4)) is None


def maker_account(session) -> Account:
    account = Account(email="m@example.org", address=MAKER)
    session.add(account)
    session.flush()
    return account


def open_order(session, account: Account, order: eip712.Order) -> SignedOrder:
    """`order` stored as an open order of `account` (flushed)."""
    digest = "0x" + uuid.uuid4().hex * 2
    row = row_of(order, account_id=account.id, custodial=False, digest=digest, signature=b"")
    session.add(row)
    session.flush()
    return row


def test_an_offer_over_reserved_on_the_mirror_asks_the_chain(mirror):
    account = maker_account(mirror)
    small = offer(10, 5_000_000)
    one_offer = eip712.collateral(10, 5_000_000, *TERMS)
    assert 0 < one_offer <= FREE
    assert state_of(mirror, small) is not None  # on its own it fits the mirrored balance
    # open offers of the same maker already reserve all the balance but less than one offer
    for _ in range(FREE // one_offer):
        open_order(mirror, account, small)
    with pytest.raises(InsufficientCollateral):
        check_funds(mirror, small, [FREE, *TERMS])
    assert state_of(mirror, small) is None  # refused on the mirror: the chain is asked


# ---------------------------------------------------------------------------------- bids

BALANCE, ALLOWANCE = 1_000_000, 100_000  # the bidder's gUSD and its allowance to the market


def allow(session, allowance: int, *, unlimited: bool = False) -> None:
    session.merge(
        TokenAllowance(
            owner=MAKER,
            spender=MARKET,
            allowance=allowance,
            unlimited=unlimited,
            block_number=1,
        )
    )
    session.flush()


def test_a_bid_is_answered_by_the_mirrored_balance_and_allowance(mirror):
    mirror.add(TokenBalance(account=MAKER, balance=BALANCE, block_number=1))
    mirror.flush()
    assert read(mirror, side=eip712.BUY) is None  # no Approval seen: the chain is asked
    allow(mirror, ALLOWANCE)
    assert read(mirror, side=eip712.BUY) == (NOW + 1, 3, [BALANCE, ALLOWANCE])
    bid = offer(1_000, 100_000, side=eip712.BUY)  # pays 100,000: all the allowance
    state = state_of(mirror, bid)
    assert state is not None and state.funds == [BALANCE, ALLOWANCE]
    assert state_of(mirror, offer(1_001, 100_000, side=eip712.BUY)) is None  # 1 unit beyond
    allow(mirror, 0, unlimited=True)
    assert read(mirror, side=eip712.BUY) == (NOW + 1, 3, [BALANCE, 2**256 - 1])
    assert state_of(mirror, offer(10_000, 100_000, side=eip712.BUY)) is not None
    assert state_of(mirror, offer(10_001, 100_000, side=eip712.BUY)) is None  # the balance


def test_open_bids_count_against_the_allowance_with_the_fills_the_mirror_has_seen(mirror):
    account = maker_account(mirror)
    mirror.add(TokenBalance(account=MAKER, balance=BALANCE, block_number=1))
    allow(mirror, ALLOWANCE)
    bid = offer(600, 100_000, side=eip712.BUY)  # pays 60,000
    assert state_of(mirror, bid) is not None
    resting = open_order(mirror, account, bid.replace(salt=2))
    assert state_of(mirror, bid) is None  # 120,000 of 100,000 with the open bid
    assert state_of(mirror, bid, with_reserved=False) is not None  # intake's look before locking

    # the matcher filled it and counted so, but the mirror has not seen the fill: the mirrored
    # allowance has not paid for it yet, so it still counts
    resting.matched_wh = 600
    mirror.add(resting)
    mirror.flush()
    assert state_of(mirror, bid) is None
    # the mirror has seen the fill: its payment has left the allowance the mirror holds
    mirror.add(
        MarketOrder(order_hash=resting.order_hash, chain_id=CHAIN_ID, filled_wh=600, block_number=2)
    )
    allow(mirror, ALLOWANCE - 60_000)
    assert state_of(mirror, bid) is None  # 60,000 + 60,000 of 40,000 left
    allow(mirror, ALLOWANCE)
    assert state_of(mirror, bid) is not None


# ---------------------------------------------------------------------------- REC offers

CERTIFICATE, HELD = 7, 500


def rec_offer(quantity_wh: int, *, salt: int = 1) -> eip712.Order:
    return eip712.Order(
        maker=to_checksum_address(MAKER),
        side=eip712.SELL,
        product=eip712.REC,
        assetId=CERTIFICATE,
        meterId=b"\0" * 32,
        quantityWh=quantity_wh,
        price=20_000,
        deliveryStart=0,
        deliveryEnd=0,
        expiry=NOW + 3_600,
        nonce=3,
        salt=salt,
    )


def test_a_rec_offer_needs_the_mirrored_holding_and_the_markets_approval(mirror):
    account = maker_account(mirror)
    mirror.add(Holding(certificate_id=CERTIFICATE, account=MAKER, balance_wh=HELD, block_number=1))
    mirror.flush()
    assert read(mirror, product=eip712.REC, asset_id=CERTIFICATE) == (NOW + 1, 3, [HELD, False])
    assert state_of(mirror, rec_offer(400)) is None  # never approved: the chain decides
    mirror.add(OperatorApproval(account=MAKER, operator=MARKET, approved=True, block_number=1))
    mirror.flush()
    assert read(mirror, product=eip712.REC, asset_id=CERTIFICATE) == (NOW + 1, 3, [HELD, True])
    assert state_of(mirror, rec_offer(400)) is not None
    assert state_of(mirror, rec_offer(501)) is None  # more than held
    open_order(mirror, account, rec_offer(200, salt=2))
    assert state_of(mirror, rec_offer(400)) is None  # 600 with the open offer of the same Wh

    revoked = mirror.get(OperatorApproval, (MAKER, MARKET))
    assert revoked is not None
    revoked.approved = False
    mirror.add(revoked)
    mirror.flush()
    assert state_of(mirror, rec_offer(100)) is None  # approval revoked: the chain decides

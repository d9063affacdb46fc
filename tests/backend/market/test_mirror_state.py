"""Intake's chain state from the indexer's mirror (backend/market/mirror_state.py and
`intake.mirrored_state`): a current mirror answers a wallet's energy offer with no chain round
trip; a mirror behind the chain head, a stale chain clock, bids and REC offers go to the chain;
an offer the mirror would refuse — its collateral, with what the maker's open offers already
reserve, exceeds the mirrored free balance, or its nonce is not the mirrored one — is sent to
the chain as well, never refused on the mirror's word."""

from __future__ import annotations

import uuid

import pytest
from eth_utils import to_checksum_address

from backend.accounts.models import Account
from backend.core.config import Settings
from backend.market import orders as eip712
from backend.market.errors import InsufficientCollateral
from backend.market.intake import check_funds, mirrored_state
from backend.market.mirror_state import mirror_state
from backend.market.models import SignedOrder
from tests.fixtures.mirror import add_mirror, energy_offer

CHAIN_ID, HEAD_BLOCK, NOW = 31337, 100, 1_900_000_000
MAKER = "0x" + "5e" * 20
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


def state_of(session, order: eip712.Order, *, head=(NOW, HEAD_BLOCK), lag: int = 0):
    settings = Settings(_env_file=None, intake_mirror_max_lag_blocks=lag)
    return mirrored_state(session, settings, order, chain_id=CHAIN_ID, head=head)


def read(session, *, side=eip712.SELL, product=eip712.ENERGY, head=(NOW, HEAD_BLOCK), lag=0):
    return mirror_state(
        session,
        to_checksum_address(MAKER),
        side=side,
        product=product,
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
            chain_id=CHAIN_ID + 1,  # no cursor of this chain
            head=(NOW, 1),
            max_lag_blocks=10**6,
        )
        is None
    )


def test_bids_and_rec_offers_read_the_chain(mirror):
    # allowance (bids) and registry approval (REC offers) are not mirrored
    assert read(mirror, side=eip712.BUY) is None
    assert read(mirror, product=eip712.REC) is None


def test_a_stale_nonce_on_the_mirror_asks_the_chain(mirror):
    # the wallet may have signed under a cancel-all the indexer has not seen yet
    assert state_of(mirror, offer(1_000, 10_000, nonce=4)) is None


def test_an_offer_over_reserved_on_the_mirror_asks_the_chain(mirror):
    account = Account(email="m@example.org", address=MAKER)
    mirror.add(account)
    mirror.flush()
    small = offer(10, 5_000_000)
    one_offer = eip712.collateral(10, 5_000_000, *TERMS)
    assert 0 < one_offer <= FREE
    assert state_of(mirror, small) is not None  # on its own it fits the mirrored balance
    # open offers of the same maker already reserve all the balance but less than one offer
    copies = FREE // one_offer
    for salt in range(copies):
        mirror.add(
            SignedOrder(
                order_hash="0x" + uuid.uuid4().hex * 2,
                account_id=account.id,
                custodial=False,
                maker=MAKER,
                side=eip712.SELL,
                product=eip712.ENERGY,
                asset_id=0,
                meter_id="0x" + small.meterId.hex(),
                quantity_wh=10,
                price=5_000_000,
                delivery_start=START,
                delivery_end=START + 900,
                expiry=START - 1,
                nonce=3,
                salt=str(salt),
                signature="0x" + "00" * 65,
            )
        )
    mirror.flush()
    with pytest.raises(InsufficientCollateral):
        check_funds(mirror, small, [FREE, *TERMS])
    assert state_of(mirror, small) is None  # refused on the mirror: the chain is asked

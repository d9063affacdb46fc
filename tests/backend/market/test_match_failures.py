"""The order at fault for a rejected match, read from the decoded revert (no chain needed: the
errors are built as `Chain.decode_revert` builds them)."""

from __future__ import annotations

import pytest
from eth_utils import to_checksum_address

from backend.chain.contracts import ContractReverted
from backend.market import orders as eip712
from backend.market.match_failures import Fault, reject, revert_is_trusted
from tests.fixtures.orders import order_row

MARKET = "0x" + "0a" * 20
BUYER = "0x" + "b1" * 20
SELLER = "0x" + "5e" * 20


BID = order_row(side=eip712.BUY, maker=BUYER)
OFFER = order_row(side=eip712.SELL, maker=SELLER)
CHECKSUM_SELLER = to_checksum_address(SELLER)  # as eth_abi decodes addresses


@pytest.mark.parametrize(
    ("error", "arguments", "culprit", "fault"),
    [
        # the buyer's payment: allowance names only the market, balance names the buyer
        (
            "ERC20InsufficientAllowance",
            {"spender": MARKET, "allowance": 0, "needed": 5},
            BID,
            Fault.FAILED,
        ),
        (
            "ERC20InsufficientBalance",
            {"sender": BUYER, "balance": 0, "needed": 5},
            BID,
            Fault.FAILED,
        ),
        # a REC buyer's receiver that refuses certificates with no reason
        ("ERC1155InvalidReceiver", {"receiver": BUYER}, BID, Fault.FAILED),
        # the seller's certificates, approval, collateral and meter (checksummed addresses too)
        (
            "ERC1155MissingApprovalForAll",
            {"operator": MARKET, "owner": CHECKSUM_SELLER},
            OFFER,
            Fault.FAILED,
        ),
        (
            "ERC1155InsufficientBalance",
            {"sender": SELLER, "balance": 0, "needed": 5, "tokenId": 1},
            OFFER,
            Fault.FAILED,
        ),
        (
            "EnergyMarketInsufficientCollateral",
            {"seller": SELLER, "required": 9, "available": 0},
            OFFER,
            Fault.FAILED,
        ),
        (
            "EnergyMarketNotMeterOwner",
            {"account": SELLER, "meterId": "0x" + "11" * 32},
            OFFER,
            Fault.FAILED,
        ),
        ("RECRegistryCertificateRevoked", {"certId": 7}, OFFER, Fault.DEAD),
        # dead orders, named by hash: withdrawn at once
        ("EnergyMarketOrderExpired", {"orderHash": BID.order_hash, "deadline": 1}, BID, Fault.DEAD),
        (
            "EnergyMarketStaleNonce",
            {"orderHash": OFFER.order_hash, "nonce": 0, "current": 1},
            OFFER,
            Fault.DEAD,
        ),
        # filled by a taker while the mirror lags: nobody's fault
        (
            "EnergyMarketInsufficientRemaining",
            {"orderHash": OFFER.order_hash, "requested": 5, "remaining": 0},
            OFFER,
            Fault.STALE,
        ),
    ],
)
def test_the_revert_names_the_order_at_fault(error, arguments, culprit, fault):
    rejection = reject(BID, OFFER, ContractReverted(error, arguments))
    assert (rejection.order, rejection.fault, rejection.undecided) == (culprit, fault, False)
    assert error in rejection.detail


def test_a_wrong_pairing_blames_neither_order():
    mismatch = ContractReverted(
        "EnergyMarketOrdersMismatch", {"bidHash": BID.order_hash, "offerHash": OFFER.order_hash}
    )
    rejection = reject(BID, OFFER, mismatch)
    assert (rejection.order, rejection.undecided) == (None, False)


def test_a_revert_nobody_decodes_is_undecided():
    rejection = reject(BID, OFFER, ContractReverted("Unknown", {}, detail="execution reverted"))
    assert (rejection.order, rejection.fault, rejection.undecided) == (None, None, True)
    # an error that names both parties decides nothing either
    both = ContractReverted("Custom", {"from": BUYER, "to": SELLER})
    assert reject(BID, OFFER, both).undecided


def test_a_rec_revert_that_a_contract_buyer_could_forge_decides_nothing():
    rec_bid = order_row(side=eip712.BUY, maker=BUYER, product=eip712.REC, asset_id=7)
    rec_offer = order_row(side=eip712.SELL, maker=SELLER, product=eip712.REC, asset_id=7)
    framed = ContractReverted(
        "ERC1155InsufficientBalance", {"sender": SELLER, "balance": 0, "needed": 5, "tokenId": 7}
    )
    contracts = {BUYER}
    trusted = revert_is_trusted(rec_bid, lambda address: address in contracts)
    assert not trusted and reject(rec_bid, rec_offer, framed, trusted=trusted).undecided
    # an EOA buyer's REC match, and any energy match, call no party code that could forge it
    assert revert_is_trusted(rec_bid, lambda address: False)
    assert revert_is_trusted(BID, lambda address: True)
    assert reject(rec_bid, rec_offer, framed).order is rec_offer

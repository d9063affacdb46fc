"""Assertion helpers and the reference settlement model for EnergyMarket tests."""
from __future__ import annotations

from contextlib import contextmanager

import ape

from tests.contracts.market.orders import BPS, payment


@contextmanager
def reverts_with(error, **inputs):
    """Like `ape.reverts(error, **inputs)`, but strict: the revert must be exactly `error` and
    every argument of the error must be asserted (ape silently ignores unknown names)."""
    with ape.reverts(error, **inputs) as info:
        yield info
    raised = info.value
    assert isinstance(raised, error), f"expected {error.__name__}, got {raised!r}"
    assert set(raised.inputs) == set(inputs), f"asserted {set(inputs)}, error has {set(raised.inputs)}"


def settlement(quantity_wh, price, delivered_wh, tolerance_bps, penalty_bps) -> dict[str, int]:
    """Reference model of `EnergyMarket._settle`."""
    delivered = min(delivered_wh, quantity_wh)
    escrow = payment(quantity_wh, price)
    gross = payment(delivered, price)
    shortfall = quantity_wh - delivered
    tolerance = quantity_wh * tolerance_bps // BPS
    penalty = 0
    if shortfall > tolerance:
        penalty = min(payment(shortfall - tolerance, price) * penalty_bps // BPS, gross)
    payout = gross - penalty
    return {"delivered": delivered, "escrow": escrow, "payout": payout, "penalty": penalty,
            "refund": escrow - payout}


def trade_from_log(log) -> tuple:
    """The `Trade` tuple of a TradeCreated log, ready to pass back to settle/reclaim."""
    return tuple(log.trade)


def single_event(receipt, event_type):
    """The one log of `event_type` in `receipt` (fails if there is not exactly one)."""
    logs = event_type.from_receipt(receipt)
    assert len(logs) == 1, f"expected one {event_type.name} log, got {len(logs)}"
    return logs[0]


def same_address(a, b) -> bool:
    a = getattr(a, "address", a)
    b = getattr(b, "address", b)
    return str(a).lower() == str(b).lower()


@contextmanager
def reverts_with_nested(signature: str, *values):
    """Revert bubbled up unchanged from a called contract (Ape decodes only the callee's
    own errors), e.g. `reverts_with_nested("ERC20InsufficientAllowance(address,uint256,uint256)", ...)`."""
    from eth_abi import encode
    from eth_utils import keccak

    types = signature[signature.index("(") + 1 : -1].split(",")
    expected = "0x" + keccak(text=signature)[:4].hex() + encode(types, list(values)).hex()
    with ape.reverts() as info:
        yield info
    assert info.value.revert_message == expected

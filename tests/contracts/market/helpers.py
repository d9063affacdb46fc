"""Assertion helpers and the reference settlement model for EnergyMarket tests."""

from __future__ import annotations

import ast
from contextlib import contextmanager

import ape
from eth_abi import encode
from eth_utils import keccak

from backend.market.orders import BPS, payment


@contextmanager
def reverts_with(error, **inputs):
    """Like `ape.reverts(error, **inputs)`, but strict: the revert must be exactly `error` and
    every argument of the error must be asserted (ape silently ignores unknown names)."""
    with ape.reverts() as info:
        yield info
    raised = info.value
    names = [i.name for i in error.abi.inputs]
    assert set(names) == set(inputs), f"asserted {set(inputs)}, {error.__name__} has {names}"
    if isinstance(raised, error):
        for name, value in inputs.items():
            assert raised.inputs[name] == value, (
                f"{name}: expected {value!r}, got {raised.inputs[name]!r}"
            )
        return
    # Ape's local provider sometimes hands back undecoded revert data (as hex or as a bytes
    # repr); compare it with the expected error's ABI encoding instead.
    signature = error.abi.selector
    types = [i.canonical_type for i in error.abi.inputs]
    expected = keccak(text=signature)[:4] + encode(types, [inputs[n] for n in names])
    assert _revert_bytes(raised.revert_message) == expected, (
        f"expected {error.__name__}, got {raised!r}"
    )


def _revert_bytes(message: str) -> bytes:
    if message.startswith("0x"):
        return bytes.fromhex(message[2:])
    if message[:2] in ('b"', "b'"):
        return ast.literal_eval(message)
    return message.encode()


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
    return {
        "delivered": delivered,
        "escrow": escrow,
        "payout": payout,
        "penalty": penalty,
        "refund": escrow - payout,
    }


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
    types = signature[signature.index("(") + 1 : -1].split(",")
    expected = "0x" + keccak(text=signature)[:4].hex() + encode(types, list(values)).hex()
    with ape.reverts() as info:
        yield info
    assert info.value.revert_message == expected


def permit(gusd, chain, owner, spender, value, sender):
    """Sign an ERC-2612 permit for `owner` (an account with a private key) and submit it."""
    from eth_account import Account

    deadline = chain.pending_timestamp + 3600
    message = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ],
        },
        "primaryType": "Permit",
        "domain": {
            "name": "GridLedger Test USD",
            "version": "1",
            "chainId": chain.chain_id,
            "verifyingContract": gusd.address,
        },
        "message": {
            "owner": owner.address,
            "spender": getattr(spender, "address", spender),
            "value": value,
            "nonce": gusd.nonces(owner.address),
            "deadline": deadline,
        },
    }
    key = getattr(owner, "private_key", None) or owner.key
    sig = Account.sign_typed_data(key, full_message=message)
    return gusd.permit(
        owner.address,
        spender,
        value,
        deadline,
        sig.v,
        sig.r.to_bytes(32, "big"),
        sig.s.to_bytes(32, "big"),
        sender=sender,
    )

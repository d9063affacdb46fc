"""What a match the chain rejected does to its orders: find the order at fault, count it, withdraw.

The matcher simulates every match (`eth_call` of `matchOrders`) before sending it; a rejected
simulation arrives as a decoded `ContractReverted`. The order at fault is read from the error:

- an argument naming exactly one of the two orders, by its hash
  (`EnergyMarketOrderExpired(orderHash, ...)`) or its maker (`ERC20InsufficientBalance(sender)`,
  `ERC1155InvalidReceiver(receiver)`, `ERC1155MissingApprovalForAll(operator, owner)`,
  `ERC1155InsufficientBalance(sender)`, `EnergyMarketInsufficientCollateral(seller)`,
  `EnergyMarketNotMeterOwner(account)`, ...);
- else the party the error belongs to: the only ERC-20 transfer of a match is the buyer's
  payment, so `ERC20InsufficientAllowance(spender=market)` is the bid's, a revoked
  certificate (`RECRegistryCertificateRevoked`) the offer's;
- else it is undecidable (e.g. a receiver's own revert that no ABI we hold decodes): the matcher
  tries each order against another counterparty before blaming one (`Rejection.undecided`).
  So is every revert of a REC match with a contract buyer: its receiver hook can revert with
  data that names the seller (`revert_is_trusted`).

Errors of the pairing itself (different periods, prices that do not cross) blame nobody: the
matcher only skips the pair. A dead order (expired, cancelled, stale nonce, bad signature, gate
closed) is withdrawn at once; any other fault counts, and at `match_failure_limit` failures the
order is withdrawn with the reason its maker sees.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlmodel import Session

from backend.chain.contracts import ContractReverted
from backend.core.config import Settings
from backend.core.utc import utc_now
from backend.market import order_events
from backend.market import orders as eip712
from backend.market.models import OrderStatus, SignedOrder

# Reverts that make an order permanently unusable: withdraw it at once.
DEAD_ORDER_ERRORS = frozenset(
    {
        "EnergyMarketOrderExpired",
        "EnergyMarketOrderCancelled",
        "EnergyMarketStaleNonce",
        "EnergyMarketInvalidSignature",
        "EnergyMarketGateClosed",
        "RECRegistryCertificateRevoked",
    }
)
# The chain filled the order elsewhere (a taker's fillOrder) and the mirror lags: no fault.
STALE_ORDER_ERRORS = frozenset({"EnergyMarketInsufficientRemaining"})
# The pairing is wrong, neither order is: the planner should not have made it.
PAIR_ERRORS = frozenset(
    {
        "EnergyMarketOrdersMismatch",
        "EnergyMarketPricesDoNotCross",
        "EnergyMarketSelfTrade",
        "EnergyMarketWrongSide",
    }
)
# Errors that name no order but belong to one party: the buyer's payment is the only ERC-20
# transfer of `matchOrders`; a revoked certificate is the seller's (and never trades again).
PARTY_ERRORS = {
    "ERC20InsufficientAllowance": eip712.BUY,
    "RECRegistryCertificateRevoked": eip712.SELL,
}


class Fault(StrEnum):
    DEAD = "dead"  # the order can never trade: withdraw now
    STALE = "stale"  # our view of its fills lags the chain: skip it this round
    FAILED = "failed"  # counts toward the failure limit


@dataclass(frozen=True)
class Rejection:
    """A rejected match: the order at fault (None: nobody, or not yet known) and why."""

    error: str
    detail: str
    order: SignedOrder | None = None
    fault: Fault | None = None
    undecided: bool = False  # nobody named: try each order against another counterparty


def _names(order: SignedOrder, arguments: dict[str, Any]) -> bool:
    values = {value.lower() for value in arguments.values() if isinstance(value, str)}
    return order.order_hash.lower() in values or order.maker.lower() in values


def reject(
    bid: SignedOrder, offer: SignedOrder, exc: ContractReverted, *, trusted: bool = True
) -> Rejection:
    """The order at fault for `exc`, the rejection of matching `bid` with `offer`.
    `trusted`: the revert data cannot come from a party's own code (see `revert_is_trusted`);
    otherwise it is undecided whatever it names."""
    error = str(exc.extensions.get("error", "Unknown"))
    arguments = exc.extensions.get("arguments") or {}
    if error in PAIR_ERRORS:
        return Rejection(error, exc.detail)
    if not trusted:
        return Rejection(error, exc.detail, undecided=True)
    named = [order for order in (bid, offer) if _names(order, arguments)]
    culprit = named[0] if len(named) == 1 else None
    if culprit is None and not named and error in PARTY_ERRORS:
        culprit = bid if PARTY_ERRORS[error] == eip712.BUY else offer
    if culprit is None:
        return Rejection(error, exc.detail, undecided=True)
    fault = (
        Fault.DEAD
        if error in DEAD_ORDER_ERRORS
        else Fault.STALE
        if error in STALE_ORDER_ERRORS
        else Fault.FAILED
    )
    return Rejection(error, exc.detail, culprit, fault)


def revert_is_trusted(bid: SignedOrder, has_code: Callable[[str], bool]) -> bool:
    """Whether the revert of a match can only come from our contracts. A REC match calls the
    buyer's ERC-1155 receiver hook, which may revert with any data, e.g. a forged
    `ERC1155InsufficientBalance(seller)` that would get an honest offer withdrawn; energy
    matches call no party's code that can bubble a revert (ERC-1271 checks are static calls
    whose failure reads as an invalid signature)."""
    return bid.product != eip712.REC or not has_code(bid.maker)


def withdraw(session: Session, settings: Settings, order: SignedOrder, reason: str) -> None:
    """Take `order` out of matching and the book; its maker sees `reason`."""
    order.status = OrderStatus.WITHDRAWN
    order.withdrawn_reason = reason[:500]
    order.updated_at = utc_now()
    session.add(order)
    order_events.announce(session, settings, "order.cancelled", order)  # it leaves the book


def record(
    session: Session, settings: Settings, order: SignedOrder, fault: Fault, detail: str
) -> None:
    """Book a rejected simulation against `order`: withdraw it if dead or at the limit."""
    if fault is Fault.STALE:
        return
    if fault is Fault.DEAD:
        withdraw(session, settings, order, f"the market refuses this order: {detail}")
        return
    order.match_failures += 1
    order.updated_at = utc_now()
    session.add(order)
    if order.match_failures >= settings.match_failure_limit:
        withdraw(
            session,
            settings,
            order,
            f"the market rejected {order.match_failures} matches of this order; last: {detail}",
        )

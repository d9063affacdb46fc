"""Errors of the market domain: orders the API refuses to store or to cancel."""

from __future__ import annotations

from backend.core.errors import Conflict, InvalidInput, PermissionDenied


class InvalidOrder(InvalidInput):
    code = "invalid-order"
    title = "The order cannot be accepted"


class InsufficientFunds(InvalidInput):
    code = "insufficient-funds"
    title = "Balance or allowance does not cover the order"


class InsufficientCollateral(InvalidInput):
    code = "insufficient-collateral"
    title = "The seller's free market balance does not cover the collateral of its energy offers"


class GateClosed(InvalidInput):
    code = "gate-closed"
    title = "The delivery period has already started"


class OrderExpired(InvalidInput):
    code = "order-expired"
    title = "The order expires before it could trade"


class InvalidSignature(InvalidInput):
    code = "invalid-signature"
    title = "The EIP-712 signature is not the maker's"


class MeterNotOwned(PermissionDenied):
    code = "meter-not-owned"
    title = "The order names a meter its maker does not own"


class DuplicateOrder(Conflict):
    code = "duplicate-order"
    title = "This order was already submitted"


class OrderNotCancellable(Conflict):
    code = "order-not-cancellable"
    title = "The order is no longer open"

"""Errors of the energy domain (mapped to problem details in backend/api/problems.py)."""

from backend.core.errors import Conflict, InvalidInput, NotFound


class TransferNotFound(NotFound):
    """No ENERGY trade with this id that the caller may see; keeps the generic `not-found` code
    and title, so an unknown id and someone else's transfer read the same."""


class NothingToWithdraw(Conflict):
    code = "nothing-to-withdraw"
    title = "The market holds no payout or refund for this account"


class WithdrawFromWallet(Conflict):
    """The API holds no key for the account: the problem's `call` is the `withdraw()` the
    wallet sends itself (or signs and posts to the relay)."""

    code = "withdraw-from-wallet"
    title = "Wallet accounts withdraw from their wallet"


class DepositFromWallet(Conflict):
    """The API holds no key for the account: the problem's `calls` are the `approve` and the
    `deposit(amount)` the wallet sends itself."""

    code = "deposit-from-wallet"
    title = "Wallet accounts deposit from their wallet"


class DepositExceedsBalance(InvalidInput):
    code = "deposit-exceeds-balance"
    title = "The account's gUSD balance does not cover the deposit"

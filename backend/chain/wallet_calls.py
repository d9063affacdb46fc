"""Transactions only a wallet can send: the API holds no key for a wallet account, so it
answers with the call to make (contract, calldata) and where a signed one may be relayed."""

from __future__ import annotations

from typing import Any

from eth_utils import abi_to_signature
from pydantic import BaseModel
from web3.contract import Contract

from backend.core.errors import InvalidInput

RELAY_PATH = "/v1/chain/transactions"


class WalletCall(BaseModel):
    """Send `data` to `to` from the account's wallet (`eth_sendTransaction`), or sign it and
    post the raw transaction to `relay`."""

    to: str
    data: str
    function: str  # the ABI signature, e.g. "withdraw()"
    relay: str = RELAY_PATH


def wallet_call(contract: Contract, function: str, *args: Any) -> WalletCall:
    """The call `contract.function(*args)` as a wallet would send it."""
    abi = contract.get_function_by_name(function).abi
    return WalletCall(
        to=contract.address,
        data=contract.encode_abi(function, list(args)),
        function=abi_to_signature(abi),
    )


class WalletMustSign(InvalidInput):
    """The API holds no key for the account: the problem's `calls` are the transactions its
    wallet sends (`eth_sendTransaction`, in order), or signs and posts to the relay."""

    code = "wallet-must-sign"
    title = "Wallet accounts sign their own transactions"

    def __init__(self, detail: str, *calls: WalletCall):
        super().__init__(detail, calls=[call.model_dump() for call in calls])

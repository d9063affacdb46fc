"""Send transactions signed locally with a key from settings (never an unlocked node account)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.types import TxParams, TxReceipt

from backend.core.errors import GridLedgerError


class TransactionFailed(GridLedgerError):
    """A transaction was mined but reverted."""


_KEY_LOCKS: dict[str, threading.Lock] = {}
_KEY_LOCKS_GUARD = threading.Lock()


@contextmanager
def key_lock(address: str) -> Iterator[None]:
    """One transaction at a time from `address` in this process: `send` takes the node's
    pending count as the nonce, which two threads sending at once would both take."""
    with _KEY_LOCKS_GUARD:
        lock = _KEY_LOCKS.setdefault(address.lower(), threading.Lock())
    with lock:
        yield


def signer(private_key: str) -> LocalAccount:
    return Account.from_key(private_key)


def send(w3: Web3, account: LocalAccount, tx: dict[str, Any], timeout: float = 120) -> TxReceipt:
    """Fill nonce/gas/fees, sign, send and wait; raise TransactionFailed on a revert."""
    tx = {"from": account.address, **tx}
    if "chainId" not in tx:
        tx["chainId"] = w3.eth.chain_id
    tx.setdefault("nonce", w3.eth.get_transaction_count(account.address, "pending"))
    if "gas" not in tx:
        # the fields are web3's transaction fields; web3 checks them when it sends
        tx["gas"] = int(w3.eth.estimate_gas(cast(TxParams, tx)) * 1.2) + 10_000
    if "maxFeePerGas" not in tx and "gasPrice" not in tx:
        base_fee = w3.eth.get_block("latest").get("baseFeePerGas", 0)
        tx["maxPriorityFeePerGas"] = 1
        tx["maxFeePerGas"] = 2 * base_fee + 1
    signed = account.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction), timeout=timeout
    )
    if receipt["status"] != 1:
        raise TransactionFailed(f"transaction {tx_hash_hex(receipt)} reverted")
    return receipt


def deploy_contract(
    w3: Web3, account: LocalAccount, abi: list[dict[str, Any]], bytecode: str, *args: Any
) -> TxReceipt:
    tx = (
        w3.eth.contract(abi=abi, bytecode=bytecode)
        .constructor(*args)
        .build_transaction({"from": account.address, "gas": 0})
    )
    tx.pop("gas")
    return send(w3, account, {"data": tx["data"]})


def transact(w3: Web3, account: LocalAccount, function_call: ContractFunction) -> TxReceipt:
    """Send a bound contract function call, e.g. `contract.functions.grantRole(role, who)`."""
    tx = function_call.build_transaction({"from": account.address, "gas": 0})
    return send(w3, account, {"to": tx["to"], "data": tx["data"], "value": tx.get("value", 0)})


def tx_hash_hex(receipt: TxReceipt) -> str:
    """A receipt's transaction hash as 0x-prefixed lowercase hex (how we store and return it)."""
    return "0x" + bytes(receipt["transactionHash"]).hex()

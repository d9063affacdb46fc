"""Relay a wallet user's signed transaction to one of our contracts, after checking it.

The caller can only relay transactions it signed itself (recovered sender = its address),
for this chain (EIP-155 / typed chain id), addressed to a GridLedger contract. The call is
simulated first, so a custom-error revert comes back as a problem instead of a failed tx.
A `registerDevice` on a meter with storage behind it is refused like the API's own route.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account as EthAccount
from eth_account._utils.legacy_transactions import Transaction as LegacyTransaction
from eth_account.typed_transactions import TypedTransaction
from eth_typing import HexStr
from hexbytes import HexBytes
from sqlmodel import Session
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    TransactionNotFound,
    Web3RPCError,
)
from web3.types import TxParams, Wei

from backend.accounts.models import Account
from backend.chain.contracts import Chain
from backend.core.errors import NotFound, PermissionDenied, ServiceUnavailable
from backend.relay.errors import RelayRejected, RelaySendFailed
from backend.relay.schemas import RelayedTxStatus, TransactionStatus
from backend.resources.certified_meters import refuse_device_on_storage_meter


def decode_transaction(raw: bytes) -> dict[str, Any]:
    """Fields of a signed legacy or typed transaction (chainId None for pre-EIP-155)."""
    try:
        if raw and raw[0] <= 0x7F:
            fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
        else:
            fields = LegacyTransaction.from_bytes(raw).as_dict()
            v = fields["v"]
            fields["chainId"] = (v - 35) // 2 if v >= 35 else None
        fields["from"] = EthAccount.recover_transaction(raw)
    except Exception as exc:  # any decoding failure means the bytes are not a signed transaction
        raise RelayRejected(f"not a signed Ethereum transaction: {str(exc)[:120]}") from exc
    return fields


def refuse_uncertifiable_device(session: Session, chain: Chain, to: str, data: bytes) -> None:
    """A wallet's `registerDevice` is refused on a meter with storage behind it, as the API's
    own route is (backend/resources/certified_meters.py)."""
    if to.lower() != chain.registry.address.lower() or len(data) < 4:
        return
    try:
        function, args = chain.registry.decode_function_input(data)
    except ValueError:
        return  # not a registry function: the simulation tells
    if function.fn_name == "registerDevice":
        device = args["input"]  # DeviceInput: a dict or a tuple, as the ABI decoder gives it
        meter = device["meterId"] if isinstance(device, dict) else device[4]
        refuse_device_on_storage_meter(session, "0x" + bytes(meter).hex())


def relay(session: Session, chain: Chain, account: Account, raw_hex: str) -> str:
    raw = bytes.fromhex(raw_hex[2:])
    tx = decode_transaction(raw)
    sender, to = tx["from"].lower(), tx.get("to")
    to = ("0x" + bytes(to).hex()) if isinstance(to, (bytes, bytearray)) else (to or "")
    if sender != account.address.lower():
        raise PermissionDenied(
            "only transactions signed by your own address can be relayed",
            signer=sender,
            account=account.address.lower(),
        )
    if tx.get("chainId") != chain.chain_id:
        raise RelayRejected(
            f"chain id {tx.get('chainId')} is not this chain ({chain.chain_id})",
            chain_id=chain.chain_id,
        )
    ours = {c.address.lower() for c in chain.deployment.contracts.values()}
    if to.lower() not in ours:
        raise RelayRejected(
            "the transaction is not addressed to a GridLedger contract", to=to.lower()
        )
    refuse_uncertifiable_device(session, chain, to, bytes(tx.get("data", b"")))
    call: TxParams = {
        "from": chain.w3.to_checksum_address(sender),
        "to": chain.w3.to_checksum_address(to),
        "data": HexStr("0x" + bytes(tx.get("data", b"")).hex()),
        "value": Wei(tx.get("value", 0)),
    }
    try:
        chain.w3.eth.call(call)
        return chain.w3.eth.send_raw_transaction(raw).to_0x_hex()
    except (ContractCustomError, ContractLogicError) as exc:
        raise chain.translate(exc) from exc
    except Web3RPCError as exc:
        raise RelaySendFailed(str(exc)[:200]) from exc
    except (OSError, ConnectionError) as exc:
        raise ServiceUnavailable("chain RPC unreachable") from exc


def transaction_status(chain: Chain, tx_hash: str) -> TransactionStatus:
    try:
        receipt = chain.w3.eth.get_transaction_receipt(HexStr(tx_hash))
    except TransactionNotFound:
        try:
            chain.w3.eth.get_transaction(HexStr(tx_hash))
        except TransactionNotFound as exc:
            raise NotFound(f"no transaction {tx_hash}") from exc
        return TransactionStatus(tx_hash=tx_hash, status=RelayedTxStatus.PENDING)
    except (OSError, ConnectionError) as exc:
        raise ServiceUnavailable("chain RPC unreachable") from exc
    return TransactionStatus(
        tx_hash=tx_hash,
        status=RelayedTxStatus.SUCCEEDED if receipt["status"] == 1 else RelayedTxStatus.REVERTED,
        block_number=receipt["blockNumber"],
        gas_used=receipt["gasUsed"],
    )

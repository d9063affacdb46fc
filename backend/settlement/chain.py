"""Chain access for the workers: contracts, signing keys and the write-ahead sender.

`send_logged` signs a call, commits the signed bytes to `settlement_batches` together with
the caller's bookkeeping, and only then broadcasts. `resolve_batch` finds out what became of
a logged transaction (mined, reverted, never sent, replaced) and re-broadcasts the same
bytes when it was never sent, so a worker killed at any point cannot cause a second,
different transaction for the same items.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from sqlmodel import Session, col, select
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    TimeExhausted,
    TransactionNotFound,
    Web3RPCError,
)
from web3.types import Nonce, TxParams, TxReceipt, Wei

from backend.chain.deployment import Deployment
from backend.chain.transactions import signer
from backend.core.config import Settings
from backend.core.errors import GridLedgerError
from backend.settlement.models import BatchKind, BatchStatus, SettlementBatch


def selector(signature: str) -> str:
    return "0x" + keccak(text=signature)[:4].hex()


TRADE_ALREADY_CLOSED = selector("EnergyMarketTradeAlreadyClosed(uint256)")
PERIOD_ALREADY_ISSUED = selector("RECRegistryPeriodAlreadyIssued(uint32,uint64,uint64)")
TRADE_STATUS = selector("tradeStatus(uint256)")
TRADE_OPEN = 1


class BatchRejected(GridLedgerError):
    """The chain refuses the batch before it is sent (a gas estimate reverted)."""

    code = "batch-rejected"

    def __init__(self, detail: str, revert_data: str = "") -> None:
        super().__init__(detail)
        self.revert_data = revert_data

    def is_error(self, error_selector: str) -> bool:
        return self.revert_data.startswith(error_selector) or error_selector in str(self.detail)


@dataclass
class ChainContext:
    w3: Web3
    market: Contract
    registry: Contract
    settler: LocalAccount
    issuer: LocalAccount
    receipt_timeout_s: float = 120
    demand_response: Contract | None = None  # None: a deployment from before DemandResponse

    @classmethod
    def from_settings(
        cls, settings: Settings, deployment: Deployment | None = None
    ) -> ChainContext:
        deployment = deployment or Deployment.read(settings.deployment_file)
        w3 = Web3(Web3.HTTPProvider(settings.rpc_url, request_kwargs={"timeout": 30}))
        market, registry = deployment.contracts["EnergyMarket"], deployment.contracts["RECRegistry"]
        dr = deployment.contracts.get("DemandResponse")
        return cls(
            w3=w3,
            market=w3.eth.contract(address=to_checksum_address(market.address), abi=market.abi),
            registry=w3.eth.contract(
                address=to_checksum_address(registry.address), abi=registry.abi
            ),
            settler=signer(settings.settler_private_key.get_secret_value()),
            issuer=signer(settings.issuer_private_key.get_secret_value()),
            demand_response=None
            if dr is None
            else w3.eth.contract(address=to_checksum_address(dr.address), abi=dr.abi),
        )

    def now(self) -> int:
        """Chain time: the contracts compare periods with block.timestamp, not wall time."""
        return self.w3.eth.get_block("latest")["timestamp"]


def error_name(abi: Sequence[Mapping[str, Any]], data: str) -> str:
    """`Name(arg types)` of the custom error whose selector starts `data`, else `data`."""
    for item in abi:
        if item.get("type") == "error":
            signature = f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"
            if data.startswith(selector(signature)):
                return f"{signature} data={data}"
    return data


def sign_call(
    ctx: ChainContext, account: LocalAccount, call: ContractFunction
) -> tuple[int, str, bytes]:
    """(nonce, tx hash, raw bytes) of `call` signed by `account`.

    Raises BatchRejected when the gas estimate reverts (the chain would refuse it)."""
    built = call.build_transaction({"from": account.address, "gas": 0})
    return sign_data(
        ctx, account, to=str(built["to"]), data=HexBytes(built["data"]), abi=call.contract_abi
    )


def sign_data(
    ctx: ChainContext,
    account: LocalAccount,
    *,
    to: str,
    data: bytes,
    abi: Sequence[Mapping[str, Any]],
    nonce: int | None = None,
) -> tuple[int, str, bytes]:
    """(nonce, tx hash, raw bytes) of a call of contract `to` (ABI `abi`, for naming a custom
    error) with calldata `data`, signed by `account` with `nonce` (default: the next free one;
    an explicit one lets several transactions be signed before any is mined).

    Raises BatchRejected when the gas estimate reverts (the chain would refuse it)."""
    w3 = ctx.w3
    tx: TxParams = {
        "from": account.address,
        "to": to_checksum_address(to),
        "data": HexStr("0x" + data.hex()),
        "value": Wei(0),
        "chainId": w3.eth.chain_id,
    }
    try:
        gas = w3.eth.estimate_gas(tx)
    except (ContractCustomError, ContractLogicError) as exc:
        revert_data = getattr(exc, "data", None)
        reverted = revert_data if isinstance(revert_data, str) else ""
        reason = error_name(abi, reverted) if reverted else str(exc)
        raise BatchRejected(f"the chain would revert: {reason}", reverted) from None
    if nonce is None:
        nonce = w3.eth.get_transaction_count(account.address, "pending")
    tx["nonce"] = Nonce(nonce)
    tx["gas"] = int(gas * 1.2) + 10_000
    base_fee = w3.eth.get_block("latest").get("baseFeePerGas", Wei(0))
    tx["maxPriorityFeePerGas"] = Wei(1)
    tx["maxFeePerGas"] = Wei(2 * base_fee + 1)
    tx.pop("from")
    # eth-account types its input as a plain dict; TxParams is the same mapping, typed
    signed = account.sign_transaction(cast(dict[str, Any], tx))
    return nonce, "0x" + signed.hash.hex().removeprefix("0x"), bytes(signed.raw_transaction)


def log_batch(
    session: Session,
    *,
    kind: BatchKind,
    sender: str,
    nonce: int,
    tx_hash: str,
    raw: bytes,
    items: int,
) -> SettlementBatch:
    """Add the signed transaction to the write-ahead log (flushed; the caller commits it).

    The same bytes as a batch DROPPED because the chain lost it (rewind.py: same nonce, calldata
    and fees once the chain is back where it was) are that batch again: logged SIGNED anew."""
    batch = session.exec(
        select(SettlementBatch).where(
            SettlementBatch.tx_hash == tx_hash, SettlementBatch.status == BatchStatus.DROPPED
        )
    ).first()
    if batch is None:
        batch = SettlementBatch(
            kind=kind, sender=sender, nonce=nonce, tx_hash=tx_hash, raw_tx=raw.hex(), items=items
        )
    else:
        batch.status, batch.resolved_at, batch.items = BatchStatus.SIGNED, None, items
    session.add(batch)
    session.flush()
    return batch


class BatchItem(Protocol):
    """A row a logged transaction carries (a reconciliation, a device-hour)."""

    status: str
    batch_id: int | None


def send_logged(
    session: Session,
    ctx: ChainContext,
    *,
    kind: BatchKind,
    account: LocalAccount,
    call: ContractFunction,
    items: Sequence[BatchItem],
    submitted: str,
) -> tuple[SettlementBatch, BatchStatus]:
    """Sign `call`, log it and mark `items` `submitted` in that batch (one commit), broadcast
    it, then resolve it: the batch and its status (SIGNED if not mined within the timeout).

    Raises BatchRejected, with nothing logged, when the chain would refuse the call."""
    nonce, tx_hash, raw = sign_call(ctx, account, call)
    batch = log_batch(
        session,
        kind=kind,
        sender=account.address,
        nonce=nonce,
        tx_hash=tx_hash,
        raw=raw,
        items=len(items),
    )
    for item in items:
        item.status, item.batch_id = submitted, batch.id
        session.add(item)
    session.commit()  # write-ahead: logged before it exists anywhere else
    broadcast(ctx, batch)
    return batch, resolve_batch(session, ctx, batch)


def broadcast(ctx: ChainContext, batch: SettlementBatch) -> None:
    try:
        ctx.w3.eth.send_raw_transaction(bytes.fromhex(batch.raw_tx))
    except (ValueError, Web3RPCError) as exc:
        # "already known/imported", "nonce too low": resolve_batch decides what became of it
        if "already" not in str(exc).lower() and "nonce" not in str(exc).lower():
            raise


def resolve_batch(
    session: Session, ctx: ChainContext, batch: SettlementBatch, wait: bool = True
) -> BatchStatus:
    """Settle the fate of a logged transaction: MINED, REVERTED or DROPPED (its nonce was used
    by another transaction, so it can never be mined); SIGNED if still undecided.
    A transaction whose nonce is still free is re-broadcast byte for byte."""
    receipt = receipt_of(ctx, batch.tx_hash)
    if receipt is None and wait:
        sender = to_checksum_address(batch.sender)
        if ctx.w3.eth.get_transaction_count(sender, "latest") > batch.nonce:
            # the nonce is used: by this transaction (receipt not served yet) or by another one
            receipt = wait_receipt(ctx, batch.tx_hash, timeout_s=5)
            if receipt is None:
                return mark(session, batch, BatchStatus.DROPPED)
        else:
            broadcast(ctx, batch)
            receipt = wait_receipt(ctx, batch.tx_hash, timeout_s=ctx.receipt_timeout_s)
    if receipt is None:
        return BatchStatus(batch.status)
    return mark(
        session, batch, BatchStatus.MINED if receipt["status"] == 1 else BatchStatus.REVERTED
    )


def wait_receipt(ctx: ChainContext, tx_hash: str, timeout_s: float) -> TxReceipt | None:
    try:
        return ctx.w3.eth.wait_for_transaction_receipt(
            HexStr(tx_hash), timeout=timeout_s, poll_latency=0.05
        )
    except TimeExhausted:
        return None


def receipt_of(ctx: ChainContext, tx_hash: str) -> TxReceipt | None:
    try:
        return ctx.w3.eth.get_transaction_receipt(HexStr(tx_hash))
    except TransactionNotFound:
        return None


def mark(session: Session, batch: SettlementBatch, status: BatchStatus) -> BatchStatus:
    batch.status = status
    batch.resolved_at = datetime.now(UTC)
    session.add(batch)
    return status


def unresolved_batches(session: Session, kind: BatchKind) -> list[SettlementBatch]:
    return list(
        session.exec(
            select(SettlementBatch)
            .where(SettlementBatch.kind == kind, SettlementBatch.status == BatchStatus.SIGNED)
            .order_by(col(SettlementBatch.nonce))
        ).all()
    )

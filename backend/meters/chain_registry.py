"""The meter registry on chain: a registrar's approval or suspension, sent to `RECRegistry`.

Signed with the registrar key the API holds (`registrar_private_key`, REGISTRAR_ROLE since
`scripts/deploy.py`), like device approval in backend/recs/services.py. Both are idempotent:
when the chain already has the wanted state no transaction is sent, so a registrar retrying
after a failure (the transaction mined, the database commit did not) converges instead of
reverting. A revert comes back as the contract's custom error (`ContractReverted`).

One registrar key signs for every API worker, so its transactions go one at a time
(`registrar_transaction`): a per-process lock for the threads of one worker and a named lock
(Redis, or a file without it) across processes; under both, the nonce is the node's pending
count, exact because the previous holder waited for its receipt (re-read if a sender outside
our locks took it meanwhile).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from eth_account import Account as EthAccount
from eth_account.signers.local import LocalAccount
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from backend.chain.contracts import Chain
from backend.chain.transactions import key_lock
from backend.core.config import Settings
from backend.core.errors import ServiceUnavailable
from backend.settlement.locks import locks_from_settings

APPROVED, SUSPENDED = 1, 2  # IRECRegistry.MeterStatus
REGISTRAR_LOCK = "registrar-key"
NONCE_ATTEMPTS = 3
NONCE_TAKEN = ("nonce too low", "replacement transaction underpriced", "already known")


def registrar(settings: Settings) -> LocalAccount:
    return EthAccount.from_key(settings.registrar_private_key.get_secret_value())


@contextmanager
def registrar_key(settings: Settings) -> Iterator[LocalAccount]:
    """The registrar key, held by this caller alone until the block exits."""
    account = registrar(settings)
    timeout = settings.settlement_lock_timeout_s
    with (
        key_lock(account.address),
        locks_from_settings(settings).hold(REGISTRAR_LOCK, timeout, wait_s=timeout) as held,
    ):
        if not held:
            raise ServiceUnavailable("the registrar key is busy: try again")
        yield account


def registrar_transaction(settings: Settings, chain: Chain, call: ContractFunction) -> TxReceipt:
    """Simulate, sign with the registrar key, send and wait, one registrar transaction at a time."""
    with registrar_key(settings) as account:
        for attempt in range(NONCE_ATTEMPTS):
            nonce = chain.w3.eth.get_transaction_count(account.address, "pending")
            try:
                return chain.transact(account, call, nonce=nonce)
            except ServiceUnavailable as exc:
                # someone outside our locks (a script, an operator's wallet) took the nonce
                # between our read and our send: read it again
                if attempt + 1 == NONCE_ATTEMPTS or not _nonce_taken(exc):
                    raise
    raise AssertionError("unreachable")  # the loop returns or raises


def _nonce_taken(exc: ServiceUnavailable) -> bool:
    return any(marker in exc.detail.lower() for marker in NONCE_TAKEN)


def _bytes32(meter_id: str) -> bytes:
    return bytes.fromhex(meter_id.removeprefix("0x"))


def send_approval(
    settings: Settings, chain: Chain, *, meter_id: str, capacity_w: int, signing_key: str
) -> TxReceipt | None:
    """`approveMeter(meterId, capacity, signing key)` unless the chain already has exactly that
    approval; the receipt, or None when nothing had to be sent."""
    _, status, capacity, key = chain.call(chain.registry.functions.meter(_bytes32(meter_id)))
    if (status, capacity, key.lower()) == (APPROVED, capacity_w, signing_key.lower()):
        return None
    call = chain.registry.functions.approveMeter(
        _bytes32(meter_id), capacity_w, chain.w3.to_checksum_address(signing_key)
    )
    return registrar_transaction(settings, chain, call)


def send_suspension(settings: Settings, chain: Chain, *, meter_id: str) -> TxReceipt | None:
    """`suspendMeter(meterId)` unless the chain has it suspended already; the receipt or None."""
    _, status, _, _ = chain.call(chain.registry.functions.meter(_bytes32(meter_id)))
    if status == SUSPENDED:
        return None
    call = chain.registry.functions.suspendMeter(_bytes32(meter_id))
    return registrar_transaction(settings, chain, call)

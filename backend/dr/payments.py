"""Money in and out of DemandResponse for an account: a program's budget (its operator),
collateral (a participant), and withdrawing credited incentives, released collateral or a
closed program's budget (pull payments).

Custodial accounts go through the API, which signs with the account's key (approving the
contract first when the allowance is short); for a wallet account the API holds no key and
answers `wallet-must-sign` with the calls its wallet sends, in order. Every signature is
recorded in the audit trail.
"""

from __future__ import annotations

import uuid

from eth_utils import to_checksum_address
from sqlmodel import Session
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.logs import DISCARD
from web3.types import TxReceipt

from backend.accounts.custody import record_signature, signer_for
from backend.accounts.models import Account
from backend.chain.contracts import Chain
from backend.chain.transactions import tx_hash_hex
from backend.chain.wallet_calls import WalletCall, WalletMustSign, wallet_call
from backend.core.config import Settings
from backend.dr import services
from backend.dr.errors import DrAccessDenied, DrContractMissing
from backend.dr.onchain import bytes32_id, program_on_chain
from backend.energy.errors import NothingToWithdraw
from backend.energy.schemas import Withdrawal


def contract(chain: Chain) -> Contract:
    if chain.demand_response is None:
        raise DrContractMissing("the deployment has no DemandResponse contract")
    return chain.demand_response


def withdrawable(chain: Chain, account: Account) -> int:
    """The account's credit in DemandResponse now (read from the chain)."""
    address = to_checksum_address(account.address)
    return int(chain.call(contract(chain).functions.balanceOf(address)))


def _send_all(
    session: Session,
    settings: Settings,
    chain: Chain,
    account: Account,
    calls: list[tuple[str, ContractFunction, WalletCall]],
) -> TxReceipt:
    """Send `calls` (audit name, call, its wallet form) with the custodial key; the last
    receipt. Raises WalletMustSign with every call for a wallet account."""
    signer = signer_for(account, settings)
    if signer is None:
        raise WalletMustSign(
            "the API holds no key for this account: send `calls` from your wallet",
            *(wallet for _, _, wallet in calls),
        )
    receipt = None
    for name, call, _ in calls:
        receipt = chain.transact(signer, call)
        record_signature(session, account, name, tx_hash=tx_hash_hex(receipt))
        session.commit()
    assert receipt is not None  # callers pass at least one call
    return receipt


def _escrow(
    session: Session,
    settings: Settings,
    chain: Chain,
    account: Account,
    function: str,
    program_id: uuid.UUID,
    amount: int,
) -> str:
    """`function(program, amount)` moving `amount` of the account's gUSD into the contract, after
    an `approve` when the allowance is short; the last transaction's hash."""
    dr = contract(chain)
    calls = []
    owner = to_checksum_address(account.address)
    allowance = int(chain.call(chain.token.functions.allowance(owner, dr.address)))
    if allowance < amount:
        calls.append(
            (
                "token.approve",
                chain.token.functions.approve(dr.address, amount),
                wallet_call(chain.token, "approve", dr.address, amount),
            )
        )
    args = (bytes32_id(program_id), amount)
    calls.append(
        (
            f"dr.{function}",
            dr.get_function_by_name(function)(*args),
            wallet_call(dr, function, *args),
        )
    )
    return tx_hash_hex(_send_all(session, settings, chain, account, calls))


def fund_program(
    session: Session,
    settings: Settings,
    chain: Chain,
    account: Account,
    program_id: uuid.UUID,
    amount: int,
) -> str:
    """Escrow `amount` into the program's budget (its operator): `createProgram` the first
    time, `fundProgram` afterwards. The transaction hash."""
    program = services.get_program(session, program_id)
    if program.operator_id != account.id:
        raise DrAccessDenied("only the program's operator funds its budget")
    function = (
        "fundProgram" if program_on_chain(contract(chain), program.id).exists else "createProgram"
    )
    return _escrow(session, settings, chain, account, function, program.id, amount)


def post_collateral(
    session: Session,
    settings: Settings,
    chain: Chain,
    account: Account,
    program_id: uuid.UUID,
    amount: int,
) -> str:
    """Post `amount` of collateral in the program (penalties are taken from it, up to it)."""
    program = services.get_program(session, program_id)
    return _escrow(session, settings, chain, account, "postCollateral", program.id, amount)


def withdraw(session: Session, settings: Settings, chain: Chain, account: Account) -> Withdrawal:
    """Pay the account its whole DemandResponse credit; `NothingToWithdraw` when it is zero."""
    dr = contract(chain)
    signer = signer_for(account, settings)
    if signer is not None and withdrawable(chain, account) == 0:
        raise NothingToWithdraw(f"DemandResponse.balanceOf({account.address}) is 0")
    receipt = _send_all(
        session,
        settings,
        chain,
        account,
        [("dr.withdraw", dr.functions.withdraw(), wallet_call(dr, "withdraw"))],
    )
    (event,) = dr.events.Withdrawn().process_receipt(receipt, errors=DISCARD)
    return Withdrawal(
        address=account.address.lower(),
        amount=str(event["args"]["amount"]),
        tx_hash=tx_hash_hex(receipt),
        block_number=receipt["blockNumber"],
    )

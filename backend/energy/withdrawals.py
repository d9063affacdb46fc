"""Payouts out of the market contract. The market pays by pull: settlement and reclaims credit
`withdrawable(account)`, and `withdraw()` moves the caller's whole credit to it in gUSD.

Custodial accounts withdraw through the API, which signs with the account's key; for a wallet
account the API holds no key and answers with the call its wallet sends.
"""

from __future__ import annotations

from eth_utils import to_checksum_address
from sqlmodel import Session
from web3.logs import DISCARD

from backend.accounts.custody import record_signature, signer_for
from backend.accounts.models import Account
from backend.chain.contracts import Chain, ContractReverted
from backend.chain.transactions import tx_hash_hex
from backend.chain.wallet_calls import wallet_call
from backend.core.config import Settings
from backend.energy.errors import NothingToWithdraw, WithdrawFromWallet
from backend.energy.schemas import Withdrawal


def withdrawable(chain: Chain, account: Account) -> int:
    """The account's credit in the market now (read from the chain, not the mirror)."""
    address = to_checksum_address(account.address)
    return int(chain.call(chain.market.functions.withdrawable(address)))


def withdraw(session: Session, settings: Settings, chain: Chain, account: Account) -> Withdrawal:
    """Send `withdraw()` with the custodial key; the amount is the one the `Withdrawn` event
    reports. Raises `WithdrawFromWallet` for accounts without a custodial key and
    `NothingToWithdraw` when the credit is zero (also when a concurrent request took it).
    The signature is recorded in the audit trail."""
    credit = withdrawable(chain, account)
    signer = signer_for(account, settings)
    if signer is None:
        call = wallet_call(chain.market, "withdraw").model_dump()
        raise WithdrawFromWallet(
            "the API holds no key for this account: send `call` from your wallet",
            call=call,
            calls=[call],  # as every wallet-must-sign problem lists them
            withdrawable=str(credit),
        )
    if credit == 0:
        raise NothingToWithdraw(f"withdrawable({account.address}) is 0")
    try:
        receipt = chain.transact(signer, chain.market.functions.withdraw())
    except ContractReverted as exc:
        if exc.extensions.get("error") == "EnergyMarketNothingToWithdraw":
            raise NothingToWithdraw(f"withdrawable({account.address}) is 0") from exc
        raise
    record_signature(session, account, "market.withdraw", tx_hash=tx_hash_hex(receipt))
    session.commit()
    (event,) = chain.market.events.Withdrawn().process_receipt(receipt, errors=DISCARD)
    return Withdrawal(
        address=account.address.lower(),
        amount=str(event["args"]["amount"]),
        tx_hash=tx_hash_hex(receipt),
        block_number=receipt["blockNumber"],
    )

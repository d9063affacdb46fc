"""Deposits into the market contract: sellers' collateral. An ENERGY sale locks part of the
seller's market balance at fill (the penalty on zero delivery); `deposit(amount)` adds to it
from the account's gUSD.

Custodial accounts deposit through the API, which signs with the account's key (approving the
market first when its allowance is short); for a wallet account the API holds no key and
answers with the calls its wallet sends.
"""

from __future__ import annotations

from eth_utils import to_checksum_address
from sqlmodel import Session
from web3.logs import DISCARD

from backend.accounts.custody import record_signature, signer_for
from backend.accounts.models import Account
from backend.chain.contracts import Chain
from backend.chain.transactions import tx_hash_hex
from backend.chain.wallet_calls import wallet_call
from backend.core.config import Settings
from backend.energy.errors import DepositExceedsBalance, DepositFromWallet
from backend.energy.schemas import Deposit


def deposit(
    session: Session, settings: Settings, chain: Chain, account: Account, amount: int
) -> Deposit:
    """Send `deposit(amount)` with the custodial key; raises `DepositFromWallet` (with the calls
    to send) for accounts without one and `DepositExceedsBalance` when its gUSD balance is short
    of `amount`. Each signature is recorded in the audit trail."""
    market = chain.market
    signer = signer_for(account, settings)
    if signer is None:
        raise DepositFromWallet(
            "the API holds no key for this account: send `calls` from your wallet",
            calls=[
                wallet_call(chain.token, "approve", market.address, amount).model_dump(),
                wallet_call(market, "deposit", amount).model_dump(),
            ],
        )
    address = to_checksum_address(account.address)
    held = int(chain.call(chain.token.functions.balanceOf(address)))
    if held < amount:
        raise DepositExceedsBalance(
            f"deposit of {amount} exceeds the gUSD balance {held}", balance=str(held)
        )
    allowance = chain.call(chain.token.functions.allowance(address, market.address))
    if int(allowance) < amount:  # exactly the deposit: trading approval is its own decision
        approval = chain.transact(signer, chain.token.functions.approve(market.address, amount))
        record_signature(session, account, "token.approve", tx_hash=tx_hash_hex(approval))
        session.commit()  # kept even if the deposit then reverts
    receipt = chain.transact(signer, market.functions.deposit(amount))
    record_signature(session, account, "market.deposit", tx_hash=tx_hash_hex(receipt))
    session.commit()
    (event,) = market.events.Deposited().process_receipt(receipt, errors=DISCARD)
    return Deposit(
        address=account.address.lower(),
        amount=event["args"]["amount"],
        tx_hash=tx_hash_hex(receipt),
        block_number=receipt["blockNumber"],
    )

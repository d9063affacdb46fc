"""Writes that send a transaction with a custodial account's key (or tell a wallet which one to
send): cancelling an order and approving the market to move the account's funds."""

from __future__ import annotations

from sqlmodel import Session

from backend.accounts.custody import custodial_signer, record_signature, signer_for
from backend.accounts.models import Account
from backend.chain.contracts import Chain
from backend.chain.transactions import tx_hash_hex
from backend.chain.wallet_calls import WalletMustSign, wallet_call
from backend.core.config import Settings
from backend.core.errors import PermissionDenied
from backend.core.utc import utc_now
from backend.market import order_events
from backend.market.account_orders import TRADING, find_order, order_state
from backend.market.errors import OrderNotCancellable
from backend.market.models import OrderStatus, SignedOrder, to_order
from backend.market.schemas import Approvals, OrderCancellation, OrderPublicStatus


def cancel_order(
    session: Session, settings: Settings, chain: Chain, account: Account, order_id: str
) -> OrderCancellation:
    """Take the rest of an order out of trading. Custodial: cancel on chain with the maker's
    key (a leaked signature is dead too). Wallet: the API holds no key, so it cancels the order
    here if the chain never saw it, else withdraws it from the operator's matching and book
    (`withdrawn`); either way the answer carries the `cancelOrder` call for the wallet.
    Asking again for a withdrawn order answers the same, except for a custodial order the
    matcher withdrew (`withdrawn_reason`): the API holds its key, so it cancels it on chain."""
    row = find_order(session, account, order_id)
    if row.account_id != account.id:
        raise PermissionDenied("only the maker cancels an order")
    _, status, mirrored = order_state(session, row, now=chain.now())
    if status not in (*TRADING, OrderPublicStatus.WITHDRAWN):
        raise OrderNotCancellable(f"order {row.order_hash} is {status}", order_status=status)
    if status != OrderPublicStatus.WITHDRAWN or (row.custodial and row.cancel_tx is None):
        if row.custodial:
            signer = custodial_signer(account.encrypted_key or "", account.id, settings)
            receipt = chain.transact(
                signer, chain.market.functions.cancelOrder(to_order(row).as_tuple())
            )
            row.cancel_tx = tx_hash_hex(receipt)
            record_signature(session, account, "market.cancelOrder", tx_hash=row.cancel_tx)
        traded_on_chain = row.matched_wh > 0 or mirrored
        withdrawn = not row.custodial and traded_on_chain
        row.status = OrderStatus.WITHDRAWN if withdrawn else OrderStatus.CANCELLED
        row.updated_at = utc_now()
        session.add(row)
        order_events.announce(session, settings, "order.cancelled", row)  # it leaves the book
        session.commit()
        session.refresh(row)
    return _cancellation(row, chain)


def _cancellation(row: SignedOrder, chain: Chain) -> OrderCancellation:
    accepted = OrderCancellation(
        id=row.order_hash,
        status=row.status,
        poll=f"/v1/trading/orders/{row.order_hash}",
        tx_hash=row.cancel_tx,
    )
    if row.custodial:
        return accepted
    accepted.cancel_on_chain = wallet_call(chain.market, "cancelOrder", to_order(row).as_tuple())
    accepted.detail = (
        "withdrawn from matching and from the order book; the chain has traded this order, so "
        "its signature is public: send cancel_on_chain from your wallet to stop takers filling "
        "the rest"
        if row.status == OrderStatus.WITHDRAWN
        else "cancelled here; the chain never saw this order. Send cancel_on_chain from your "
        "wallet only if its signature was shared elsewhere"
    )
    return accepted


def approve_market(
    session: Session, settings: Settings, chain: Chain, account: Account
) -> Approvals:
    """Custodial: let the market take this account's gUSD (bids) and certificates (REC offers),
    which order intake requires. Wallet accounts get `WalletMustSign` with the `approve` and
    `setApprovalForAll` calls their wallet sends. Both signatures are audited."""
    market = chain.market.address
    token_args, registry_args = (market, 2**256 - 1), (market, True)
    signer = signer_for(account, settings)
    if signer is None:
        raise WalletMustSign(
            "approve the market from your wallet: send `calls` in order",
            wallet_call(chain.token, "approve", *token_args),
            wallet_call(chain.registry, "setApprovalForAll", *registry_args),
        )
    token = chain.transact(signer, chain.token.functions.approve(*token_args))
    registry = chain.transact(signer, chain.registry.functions.setApprovalForAll(*registry_args))
    approvals = Approvals(token_tx=tx_hash_hex(token), registry_tx=tx_hash_hex(registry))
    record_signature(session, account, "token.approve", tx_hash=approvals.token_tx)
    record_signature(session, account, "registry.setApprovalForAll", tx_hash=approvals.registry_tx)
    session.commit()
    return approvals

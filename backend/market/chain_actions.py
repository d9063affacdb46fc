"""Writes that send a transaction with a custodial account's key: cancelling an order (on
chain too, when the chain may know it) and approving the market to move the account's funds."""

from __future__ import annotations

from sqlmodel import Session

from backend.accounts.custody import custodial_signer
from backend.accounts.models import Account
from backend.chain.contracts import Chain
from backend.chain.transactions import tx_hash_hex
from backend.core.config import Settings
from backend.core.errors import PermissionDenied
from backend.core.utc import utc_now
from backend.market import order_events
from backend.market.account_orders import TRADING, find_order, order_state
from backend.market.errors import InvalidOrder, OrderNotCancellable
from backend.market.models import OrderStatus, SignedOrder, to_order
from backend.market.schemas import Approvals


def cancel_order(
    session: Session, settings: Settings, chain: Chain, account: Account, order_id: str
) -> SignedOrder:
    """Cancel on chain with the maker's custodial key when the chain knows the order (or for
    any custodial order, so a leaked signature is dead too); otherwise only off chain."""
    row = find_order(session, account, order_id)
    if row.account_id != account.id:
        raise PermissionDenied("only the maker cancels an order")
    _, status, mirrored = order_state(session, row, now=chain.now())
    if status not in TRADING:
        raise OrderNotCancellable(f"order {row.order_hash} is {status}", order_status=status)
    on_chain = row.matched_wh > 0 or mirrored
    if row.custodial:
        signer = custodial_signer(account.encrypted_key or "", account.id, settings)
        receipt = chain.transact(
            signer, chain.market.functions.cancelOrder(to_order(row).as_tuple())
        )
        row.cancel_tx = tx_hash_hex(receipt)
    elif on_chain:
        raise OrderNotCancellable(
            "this order has traded on chain: cancel it from your wallet with "
            "cancelOrder(order); it is withdrawn from matching meanwhile"
        )
    row.status = OrderStatus.CANCELLED
    row.updated_at = utc_now()
    session.add(row)
    order_events.announce(session, settings, "order.cancelled", row)
    session.commit()
    session.refresh(row)
    return row


def approve_market(settings: Settings, chain: Chain, account: Account) -> Approvals:
    """Custodial: let the market take this account's gUSD (bids) and certificates (REC offers),
    which order intake requires. Wallet accounts send `approve`/`setApprovalForAll` themselves."""
    if account.kind != "custodial" or not account.encrypted_key:
        raise InvalidOrder("wallet accounts approve the market from their wallet")
    signer = custodial_signer(account.encrypted_key, account.id, settings)
    market = chain.market.address
    token = chain.transact(signer, chain.token.functions.approve(market, 2**256 - 1))
    registry = chain.transact(signer, chain.registry.functions.setApprovalForAll(market, True))
    return Approvals(token_tx=tx_hash_hex(token), registry_tx=tx_hash_hex(registry))

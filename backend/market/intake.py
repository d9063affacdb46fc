"""Order intake: an order is checked against chain state before it is stored.

`place_order` runs its steps in this order: read the chain (time, the maker's nonce and funds,
in one JSON-RPC batch), build the order from its terms (shape, period, gate closure, expiry),
sign it (custodial) or check its nonce and signature (wallet), refuse a duplicate, check the
maker's funds, then store it with its `order.placed` event.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address
from sqlmodel import Session, col, select

from backend.accounts.custody import custodial_signer
from backend.accounts.models import Account
from backend.chain.contracts import Chain, ViewCall
from backend.core.config import Settings
from backend.market import order_events
from backend.market import orders as eip712
from backend.market.errors import (
    DuplicateOrder,
    GateClosed,
    InsufficientFunds,
    InvalidOrder,
    InvalidSignature,
    OrderExpired,
)
from backend.market.ids import PRODUCTS, SIDES
from backend.market.models import OrderStatus, SignedOrder
from backend.market.schemas import OrderCreate, OrderTerms

DEFAULT_EXPIRY_S = 3600
NO_METER = b"\0" * 32


def fresh_salt() -> int:
    """A random uint256 salt of 64 bits with the top one set: always above 2^53, so a client
    that parses the typed-data document lossily fails on its first order, not one in 2048."""
    return secrets.randbits(63) | 1 << 63


def build_order(
    account: Account, terms: OrderTerms, *, now: int, nonce: int, salt: int
) -> eip712.Order:
    """The EIP-712 order for `terms`, checked for shape, period, gate closure and expiry."""
    product = PRODUCTS[terms.product]
    if product == eip712.ENERGY:
        start, end = (
            terms.delivery_start,
            terms.delivery_end or terms.delivery_start + eip712.SLOT_SECONDS,
        )
        if terms.asset_id != 0:
            raise InvalidOrder("energy orders have asset_id 0")
        if start % eip712.SLOT_SECONDS or end % eip712.SLOT_SECONDS or start >= end:
            raise InvalidOrder(
                "delivery period must be 15-minute aligned with start < end",
                delivery_start=start,
                delivery_end=end,
            )
        if start <= now:
            raise GateClosed(
                f"delivery starts at {start}, chain time is {now}", delivery_start=start, now=now
            )
        default_expiry = min(now + DEFAULT_EXPIRY_S, start - 1)
        meter = (
            bytes.fromhex(terms.meter_id[2:])
            if terms.meter_id
            else eip712.meter_id(f"meter:{to_checksum_address(account.address)}")
        )
    else:
        start = end = 0
        if terms.asset_id == 0 or terms.delivery_start or terms.delivery_end:
            raise InvalidOrder(
                "REC orders need asset_id (the certificate id) and no delivery period"
            )
        default_expiry = now + DEFAULT_EXPIRY_S
        meter = NO_METER
    expiry = terms.expiry if terms.expiry is not None else default_expiry
    if expiry <= now:
        raise OrderExpired(f"expiry {expiry} is not after chain time {now}", expiry=expiry, now=now)
    return eip712.Order(
        maker=to_checksum_address(account.address),
        side=SIDES[terms.side],
        product=product,
        assetId=terms.asset_id,
        meterId=meter,
        quantityWh=terms.quantity_wh,
        price=terms.price,
        deliveryStart=start,
        deliveryEnd=end,
        expiry=expiry,
        nonce=nonce,
        salt=salt,
    )


def digest_hex(order: eip712.Order, chain: Chain) -> str:
    """The order's EIP-712 digest (its id, the market's `orderHash`) as 0x-hex."""
    return "0x" + eip712.order_digest(order, chain.chain_id, chain.market.address).hex()


def typed_data_for(account: Account, terms: OrderTerms, chain: Chain) -> tuple[dict[str, Any], str]:
    """The document a wallet signs (maker, current nonce and a fresh salt filled in)."""
    now, (nonce,) = chain.read(
        chain.view(chain.market, "nonces", to_checksum_address(account.address))
    )
    order = build_order(account, terms, now=now, nonce=nonce, salt=fresh_salt())
    return eip712.typed_data(order, chain.chain_id, chain.market.address), digest_hex(order, chain)


# ------------------------------------------------------------------------- chain state


@dataclass(frozen=True)
class ChainState:
    """What intake reads from the chain, in one batch against the latest block."""

    now: int  # chain time
    nonce: int  # the maker's current nonce
    funds: list[Any]  # the values of `funds_reads`, in order


def funds_reads(
    chain: Chain, maker: str, *, side: int, product: int, asset_id: int
) -> list[ViewCall]:
    """The chain values `check_funds` compares: token balance and allowance for bids,
    certificate balance and the market's approval for REC offers, nothing for energy offers."""
    market = chain.market.address
    if side == eip712.BUY:
        return [
            chain.view(chain.token, "balanceOf", maker),
            chain.view(chain.token, "allowance", maker, market),
        ]
    if product == eip712.REC:
        return [
            chain.view(chain.registry, "balanceOf", maker, asset_id),
            chain.view(chain.registry, "isApprovedForAll", maker, market),
        ]
    return []


def read_chain_state(chain: Chain, maker: str, request: OrderTerms) -> ChainState:
    """Chain time, the maker's nonce and its funds: one JSON-RPC batch (`Chain.read`)."""
    now, (nonce, *funds) = chain.read(
        chain.view(chain.market, "nonces", maker),
        *funds_reads(
            chain,
            maker,
            side=SIDES[request.side],
            product=PRODUCTS[request.product],
            asset_id=request.asset_id,
        ),
    )
    return ChainState(now=now, nonce=nonce, funds=funds)


# ------------------------------------------------------------------ terms and signature


def sign_custodial(
    settings: Settings, chain: Chain, account: Account, request: OrderCreate, state: ChainState
) -> tuple[eip712.Order, bytes]:
    """The order from its terms, signed with the account's custodial key."""
    if request.signature or request.nonce is not None or request.salt is not None:
        raise InvalidOrder("custodial accounts send only the order terms; the API signs")
    order = build_order(account, request, now=state.now, nonce=state.nonce, salt=fresh_salt())
    signer = custodial_signer(account.encrypted_key or "", account.id, settings)
    return order, eip712.sign_order(order, signer.key, chain.chain_id, chain.market.address)


def verify_wallet_signature(
    chain: Chain, account: Account, request: OrderCreate, state: ChainState
) -> tuple[eip712.Order, bytes]:
    """The order from its terms, nonce and salt, with the wallet's signature once it is checked
    to be current (nonce) and the maker's."""
    if (
        not request.signature
        or request.nonce is None
        or request.salt is None
        or request.expiry is None
    ):
        raise InvalidOrder("wallet orders need nonce, salt, expiry and signature")
    order = build_order(account, request, now=state.now, nonce=request.nonce, salt=request.salt)
    if order.nonce != state.nonce:
        raise InvalidOrder(f"nonce {order.nonce} is stale; the maker's nonce is {state.nonce}")
    signature = bytes.fromhex(request.signature[2:])
    try:
        recovered = eip712.recover_maker(order, signature, chain.chain_id, chain.market.address)
    except Exception as exc:  # malformed r/s/v: eth_keys raises several types
        raise InvalidSignature("signature cannot be recovered") from exc
    if recovered.lower() != account.address.lower():
        raise InvalidSignature(
            f"signed by {recovered}, expected {to_checksum_address(account.address)}"
        )
    return order, signature


# ----------------------------------------------------------------------------- funds


def reserved(session: Session, maker: str, *, side: int, asset_id: int | None = None) -> int:
    """What the maker's other open orders already commit: payment for bids (any product), Wh
    of one certificate (`asset_id`) for REC offers."""
    query = select(SignedOrder).where(
        col(SignedOrder.maker) == maker,
        col(SignedOrder.status) == OrderStatus.OPEN,
        col(SignedOrder.side) == side,
    )
    if asset_id is not None:
        query = query.where(
            col(SignedOrder.product) == eip712.REC, col(SignedOrder.asset_id) == asset_id
        )
    total = 0
    for row in session.exec(query):
        remaining = max(row.quantity_wh - row.matched_wh, 0)
        total += eip712.payment(remaining, row.price) if side == eip712.BUY else remaining
    return total


def check_funds(session: Session, order: eip712.Order, funds: list[Any]) -> None:
    """The maker's funds cover this order and what its other open orders commit. `funds` are
    the values of `funds_reads` for this order, read with its nonce and chain time."""
    maker = order.maker.lower()
    if order.side == eip712.BUY:
        needed = eip712.payment(order.quantityWh, order.price) + reserved(
            session, maker, side=eip712.BUY
        )
        balance, allowance = funds
        if balance < needed or allowance < needed:
            raise InsufficientFunds(
                f"bids need {needed} token units; balance {balance}, allowance {allowance}",
                needed=str(needed),
                balance=str(balance),
                allowance=str(allowance),
            )
    elif order.product == eip712.REC:
        needed = order.quantityWh + reserved(
            session, maker, side=eip712.SELL, asset_id=order.assetId
        )
        held, approved = funds
        if held < needed or not approved:
            raise InsufficientFunds(
                f"offers need {needed} Wh of certificate {order.assetId}; held {held}, "
                f"market approved: {approved}",
                needed=str(needed),
                held=str(held),
            )
    if order.product == eip712.ENERGY and order.meterId == NO_METER:
        raise InvalidOrder("energy orders need a meter id")


# ----------------------------------------------------------------------------- store


def check_not_stored(session: Session, digest: str) -> None:
    stored = select(SignedOrder.seq).where(col(SignedOrder.order_hash) == digest)
    if session.exec(stored).first() is not None:
        raise DuplicateOrder(f"order {digest} exists", order_id=digest)


def store(
    session: Session,
    settings: Settings,
    account: Account,
    order: eip712.Order,
    *,
    digest: str,
    signature: bytes,
) -> SignedOrder:
    """Insert the order with its `order.placed` event and commit; the row comes back loaded."""
    row = SignedOrder(
        order_hash=digest,
        account_id=account.id,
        custodial=account.kind == "custodial",
        maker=order.maker.lower(),
        side=order.side,
        product=order.product,
        asset_id=order.assetId,
        meter_id="0x" + order.meterId.hex(),
        quantity_wh=order.quantityWh,
        price=order.price,
        delivery_start=order.deliveryStart,
        delivery_end=order.deliveryEnd,
        expiry=order.expiry,
        nonce=order.nonce,
        salt=str(order.salt),
        signature="0x" + signature.hex(),
    )
    session.add(row)
    order_events.announce(session, settings, "order.placed", row)
    session.flush()  # INSERT ... RETURNING seq: every column of `row` is now loaded
    session.expunge(row)  # so commit does not expire it and the caller reads it without a SELECT
    session.commit()
    return row


def place_order(
    session: Session, settings: Settings, chain: Chain, account: Account, request: OrderCreate
) -> SignedOrder:
    """Validate against chain state, sign (custodial) or verify (wallet), then store."""
    state = read_chain_state(chain, to_checksum_address(account.address), request)
    if account.kind == "custodial":
        order, signature = sign_custodial(settings, chain, account, request, state)
    else:
        order, signature = verify_wallet_signature(chain, account, request, state)
    digest = digest_hex(order, chain)
    check_not_stored(session, digest)
    check_funds(session, order, state.funds)
    return store(session, settings, account, order, digest=digest, signature=signature)

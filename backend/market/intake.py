"""Order intake: an order is checked against chain state before it is stored.

`place_order` runs its steps in this order: read the chain (time, the maker's nonce and funds,
in one JSON-RPC batch; an order signed by its wallet's own key takes them from the indexer's
mirror when it is current and they suffice, `backend.market.mirror_state`), build the order
from its terms (shape, period, gate closure, expiry), sign it (custodial) or check its nonce
and signature (wallet), refuse a duplicate, check the maker's funds (on the mirror: checked
again under the maker's lock, and asked of the chain if it no longer passes) and that an
energy order's meter is the maker's (`meter_ownership`), then store it with its `order.placed`
event.

A wallet order's shape is checked before the chain read, and its signature is the maker's
ECDSA signature or — a contract wallet (ERC-1271) — one the maker's `isValidSignature`
accepts: that call joins the same batch, and only when the signature is not the maker's own.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from eth_utils import to_checksum_address
from sqlalchemy import func, text
from sqlmodel import Session, col, select

from backend.accounts.custody import custodial_signer, record_signature
from backend.accounts.models import Account, AccountKind
from backend.chain.contracts import Chain, ViewCall
from backend.chain.signatures import (
    checksum_address,
    ecdsa_signer,
    erc1271_accepts,
    is_valid_signature_call,
)
from backend.core.config import Settings
from backend.market import order_events
from backend.market import orders as eip712
from backend.market.errors import (
    DuplicateOrder,
    GateClosed,
    InsufficientCollateral,
    InsufficientFunds,
    InvalidOrder,
    InvalidSignature,
    OrderExpired,
)
from backend.market.ids import PRODUCTS, SIDES
from backend.market.meter_ownership import check_meter_owned
from backend.market.mirror_state import CLOCK_MAX_AGE_S, mirror_state
from backend.market.models import OrderStatus, SignedOrder
from backend.market.order_state import MIRROR_JOIN
from backend.market.schemas import OrderCreate, OrderTerms
from indexer.models import MarketOrder

DEFAULT_EXPIRY_S = 3600
INTAKE_LOCK_CLASS = 0x4F52_4452  # "ORDR": with hashtext(maker), one lock per maker
NO_METER = b"\0" * 32


def fresh_salt() -> int:
    """A random uint256 salt of 64 bits with the top one set: always above 2^53, so a client
    that parses the typed-data document lossily fails on its first order, not one in 2048."""
    return secrets.randbits(63) | 1 << 63


def build_order(
    account: Account, terms: OrderTerms, *, now: int, nonce: int, salt: int
) -> eip712.Order:
    """The EIP-712 order for `terms`, checked for shape, period, gate closure and expiry."""
    expiry = terms.expiry if terms.expiry is not None else default_expiry(terms, now=now)
    order = order_from_terms(account, terms, nonce=nonce, salt=salt, expiry=expiry)
    check_times(order, now=now)
    return order


def default_expiry(terms: OrderTerms, *, now: int) -> int:
    """An hour from now; energy orders expire before their delivery starts."""
    if PRODUCTS[terms.product] == eip712.ENERGY:
        return min(now + DEFAULT_EXPIRY_S, terms.delivery_start - 1)
    return now + DEFAULT_EXPIRY_S


def order_from_terms(
    account: Account, terms: OrderTerms, *, nonce: int, salt: int, expiry: int
) -> eip712.Order:
    """The EIP-712 order for `terms`, checked for shape and period (not against chain time)."""
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
        meter = (
            bytes.fromhex(terms.meter_id[2:])
            if terms.meter_id
            else eip712.default_meter_id(account.address)
        )
    else:
        start = end = 0
        if terms.asset_id == 0 or terms.delivery_start or terms.delivery_end:
            raise InvalidOrder(
                "REC orders need asset_id (the certificate id) and no delivery period"
            )
        meter = NO_METER
    if salt >= 2**256:
        raise InvalidOrder("salt must fit in uint256")
    return eip712.Order(
        maker=checksum_address(account.address),
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


def check_times(order: eip712.Order, *, now: int) -> None:
    """Gate closure (energy: delivery starts after chain time `now`) and expiry."""
    if order.product == eip712.ENERGY and order.deliveryStart <= now:
        raise GateClosed(
            f"delivery starts at {order.deliveryStart}, chain time is {now}",
            delivery_start=order.deliveryStart,
            now=now,
        )
    if order.expiry <= now:
        raise OrderExpired(
            f"expiry {order.expiry} is not after chain time {now}", expiry=order.expiry, now=now
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
    erc1271: Any = None  # the maker's answer to the `probe` read with them, if any


def funds_reads(
    chain: Chain, maker: str, *, side: int, product: int, asset_id: int
) -> list[ViewCall]:
    """The chain values `check_funds` compares: token balance and allowance for bids,
    certificate balance and the market's approval for REC offers, the free market balance and
    the settlement terms (which size the collateral) for energy offers."""
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
    return [
        chain.view(chain.market, "withdrawable", maker),
        chain.view(chain.market, "toleranceBps"),
        chain.view(chain.market, "penaltyBps"),
    ]


def read_chain_state(
    chain: Chain, maker: str, request: OrderTerms, probe: ViewCall | None = None
) -> ChainState:
    """Chain time, the maker's nonce and its funds (and the answer to `probe`, the maker's
    ERC-1271 `isValidSignature` call, when given): one JSON-RPC batch (`Chain.read`)."""
    now, (nonce, *funds) = chain.read(
        chain.view(chain.market, "nonces", maker),
        *funds_reads(
            chain,
            maker,
            side=SIDES[request.side],
            product=PRODUCTS[request.product],
            asset_id=request.asset_id,
        ),
        *([probe] if probe else []),
    )
    if probe is None:
        return ChainState(now=now, nonce=nonce, funds=funds)
    return ChainState(now=now, nonce=nonce, funds=funds[:-1], erc1271=funds[-1])


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


def wallet_order(account: Account, request: OrderCreate) -> tuple[eip712.Order, bytes]:
    """The order a wallet signed (its terms, nonce, salt and expiry) and the signature, checked
    for shape before anything is read from the chain."""
    if (
        not request.signature
        or request.nonce is None
        or request.salt is None
        or request.expiry is None
    ):
        raise InvalidOrder("wallet orders need nonce, salt, expiry and signature")
    order = order_from_terms(
        account, request, nonce=request.nonce, salt=int(request.salt), expiry=request.expiry
    )
    return order, bytes.fromhex(request.signature[2:])


def check_wallet_order(order: eip712.Order, state: ChainState, *, signer: str | None) -> None:
    """A wallet order is open at chain time, carries the maker's current nonce, and is signed by
    the maker: `signer` (the ECDSA signer of its digest, checksummed) is the maker, or the
    maker's ERC-1271 `isValidSignature` accepted the signature (`state.erc1271`)."""
    check_times(order, now=state.now)
    if order.nonce != state.nonce:
        raise InvalidOrder(f"nonce {order.nonce} is stale; the maker's nonce is {state.nonce}")
    if signer != order.maker and not erc1271_accepts(state.erc1271):
        raise InvalidSignature(
            f"signed by {signer or 'no recoverable key'}, expected {order.maker} "
            "(its key, or a signature its ERC-1271 isValidSignature accepts)"
        )


# ----------------------------------------------------------------------------- funds


def _open_orders(maker: str, *, side: int, mirrored_fills: bool = False) -> Any:
    """SELECT Wh, matched Wh and price of the maker's open orders on one side: three columns,
    not whole rows (a busy maker has hundreds; every new order of its reads them all). With
    `mirrored_fills`, matched Wh are those the indexer's mirror has seen filled."""
    if mirrored_fills:
        matched: Any = func.coalesce(col(MarketOrder.filled_wh), 0)
        query = select(col(SignedOrder.quantity_wh), matched, col(SignedOrder.price))
        query = query.outerjoin(MarketOrder, MIRROR_JOIN)
    else:
        query = select(
            col(SignedOrder.quantity_wh), col(SignedOrder.matched_wh), col(SignedOrder.price)
        )
    return query.where(
        col(SignedOrder.maker) == maker,
        col(SignedOrder.status) == OrderStatus.OPEN,
        col(SignedOrder.side) == side,
    )


def reserved(
    session: Session,
    maker: str,
    *,
    side: int,
    asset_id: int | None = None,
    mirrored_fills: bool = False,
) -> int:
    """What the maker's other open orders already commit: payment for bids (any product), Wh
    of one certificate (`asset_id`) for REC offers.

    With `mirrored_fills`, an order's fills are those the indexer's mirror has seen, not the
    matcher's `matched_wh` (which runs ahead of the mirror): the mirrored allowance, token
    balance and holdings have paid for exactly those fills, so the two agree. Read it before
    the mirrored funds (`mirror_state`): a fill indexed in between then lowers the funds but
    not this sum, which refuses more, never accepts more."""
    query = _open_orders(maker, side=side, mirrored_fills=mirrored_fills)
    if asset_id is not None:
        query = query.where(
            col(SignedOrder.product) == eip712.REC, col(SignedOrder.asset_id) == asset_id
        )
    total = 0
    for quantity, matched, price in session.exec(query):
        remaining = max(quantity - matched, 0)
        total += eip712.payment(remaining, price) if side == eip712.BUY else remaining
    return total


def reserved_collateral(session: Session, maker: str, terms: tuple[int, int]) -> int:
    """Collateral the maker's other open energy offers will lock when they trade, under the
    current settlement `terms` (tolerance bps, penalty bps)."""
    query = _open_orders(maker, side=eip712.SELL).where(col(SignedOrder.product) == eip712.ENERGY)
    return sum(
        eip712.collateral(max(quantity - matched, 0), price, *terms)
        for quantity, matched, price in session.exec(query)
    )


def check_funds(session: Session, order: eip712.Order, funds: list[Any]) -> None:
    """The maker's funds cover this order and what its other open orders commit. `funds` are
    the values of `funds_reads` for this order, read with its nonce and chain time."""
    maker = order.maker.lower()
    if order.side == eip712.BUY:
        committed = reserved(session, maker, side=eip712.BUY)
    elif order.product == eip712.REC:
        committed = reserved(session, maker, side=eip712.SELL, asset_id=order.assetId)
    else:
        committed = reserved_collateral(session, maker, (funds[1], funds[2]))
    check_covered(order, funds, committed)


def check_covered(order: eip712.Order, funds: list[Any], committed: int) -> None:
    """`check_funds` once what the maker's other open orders commit is known (`committed`:
    payment of its bids, Wh of the certificate its REC offers sell, or the collateral of its
    energy offers)."""
    if order.side == eip712.BUY:
        needed = eip712.payment(order.quantityWh, order.price) + committed
        balance, allowance = funds
        if balance < needed or allowance < needed:
            raise InsufficientFunds(
                f"bids need {needed} token units; balance {balance}, allowance {allowance}",
                needed=str(needed),
                balance=str(balance),
                allowance=str(allowance),
            )
    elif order.product == eip712.REC:
        needed = order.quantityWh + committed
        held, approved = funds
        if held < needed or not approved:
            raise InsufficientFunds(
                f"offers need {needed} Wh of certificate {order.assetId}; held {held}, "
                f"market approved: {approved}",
                needed=str(needed),
                held=str(held),
            )
    else:
        free, *terms = funds
        needed = eip712.collateral(order.quantityWh, order.price, *terms) + committed
        if free < needed:
            raise InsufficientCollateral(
                f"energy offers lock {needed} token units of collateral when they trade; the "
                f"free market balance is {free}: deposit more (POST /v1/energy/deposits)",
                needed=str(needed),
                available=str(free),
            )
    if order.product == eip712.ENERGY and order.meterId == NO_METER:
        raise InvalidOrder("energy orders need a meter id")


def lock_maker(session: Session, maker: str) -> None:
    """Serialise the funds check and insert of one maker's orders until the transaction ends:
    two orders checked at once would both pass against the same free balance. The
    PostgreSQL advisory lock (INTAKE_LOCK_CLASS, hashtext(lower-case maker)) is the one the
    group commit takes (backend/market/order_writer.py), so API workers and paths exclude each
    other; SQLite has a single writer."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:class, hashtext(:maker))"),
            {"class": INTAKE_LOCK_CLASS, "maker": maker.lower()},
        )


# ----------------------------------------------------------------------------- store


def check_not_stored(session: Session, digest: str) -> None:
    stored = select(SignedOrder.seq).where(col(SignedOrder.order_hash) == digest)
    if session.exec(stored).first() is not None:
        raise DuplicateOrder(f"order {digest} exists", order_id=digest)


def row_of(
    order: eip712.Order,
    *,
    account_id: uuid.UUID,
    custodial: bool,
    digest: str,
    signature: bytes,
) -> SignedOrder:
    """The `signed_orders` row of a checked order (not added to any session)."""
    return SignedOrder(
        order_hash=digest,
        account_id=account_id,
        custodial=custodial,
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
    row = row_of(
        order,
        account_id=account.id,
        custodial=account.kind == AccountKind.CUSTODIAL,
        digest=digest,
        signature=signature,
    )
    session.add(row)
    order_events.announce(session, settings, "order.placed", row)
    session.flush()  # INSERT ... RETURNING seq: every column of `row` is now loaded
    session.expunge(row)  # so commit does not expire it and the caller reads it without a SELECT
    session.commit()
    return row


def mirrored_state(
    session: Session,
    settings: Settings,
    order: eip712.Order,
    *,
    chain_id: int,
    market: str,
    head: tuple[int, int] | None,
    with_reserved: bool = True,
) -> ChainState | None:
    """The chain state of a wallet order signed by its maker's key from the indexer's mirror,
    if the mirror can answer (`mirror_state`) and the order passes on it; None: ask the chain
    (a refusal on mirrored values is never final — the chain may be ahead of the mirror).
    `market`: the EnergyMarket's address (the spender and operator bids and REC offers need).
    Without `with_reserved` the order's funds are checked as if the maker had no other open
    order (one statement: `place_order`'s look before it takes the maker's lock)."""
    committed = None if with_reserved else 0
    if with_reserved and (order.side == eip712.BUY or order.product == eip712.REC):
        # before the funds: see `reserved`
        committed = reserved(
            session,
            order.maker.lower(),
            side=order.side,
            asset_id=order.assetId if order.side == eip712.SELL else None,
            mirrored_fills=True,
        )
    mirrored = mirror_state(
        session,
        order.maker,
        side=order.side,
        product=order.product,
        asset_id=order.assetId,
        market=market,
        chain_id=chain_id,
        head=head,
        max_lag_blocks=settings.intake_mirror_max_lag_blocks,
    )
    if mirrored is None:
        return None
    now, nonce, funds = mirrored
    state = ChainState(now=now, nonce=nonce, funds=funds)
    try:
        check_wallet_order(order, state, signer=order.maker)
        if committed is None:
            check_funds(session, order, state.funds)
        else:
            check_covered(order, state.funds, committed)
    except (InvalidOrder, GateClosed, OrderExpired, InsufficientCollateral, InsufficientFunds):
        return None
    return state


def place_order(
    session: Session, settings: Settings, chain: Chain, account: Account, request: OrderCreate
) -> SignedOrder:
    """Validate against chain state, sign (custodial) or verify (wallet), then store."""
    maker = to_checksum_address(account.address)
    mirrored: Callable[..., ChainState | None] | None = None  # the order's mirror check
    if account.kind == AccountKind.CUSTODIAL:
        state = read_chain_state(chain, maker, request)
        order, signature = sign_custodial(settings, chain, account, request, state)
        digest = eip712.order_digest(order, chain.chain_id, chain.market.address)
    else:
        # the maker's own key signed, or (a contract wallet) ask it in the same chain read
        order, signature = wallet_order(account, request)
        digest = eip712.order_digest(order, chain.chain_id, chain.market.address)
        signer = ecdsa_signer(digest, signature)
        if signer == maker:
            mirrored = partial(
                mirrored_state,
                settings=settings,
                order=order,
                chain_id=chain.chain_id,
                market=chain.market.address,
                head=chain.recent_head(CLOCK_MAX_AGE_S),
            )
        # is the mirror current, and does the order pass on it alone? (the funds with what the
        # maker's open orders reserve: under its lock, below)
        trusted = mirrored(session, with_reserved=False) if mirrored else None
        if trusted:
            state = trusted
        else:
            mirrored = None
            probe = None if signer == maker else is_valid_signature_call(maker, digest, signature)
            state = read_chain_state(chain, maker, request, probe)
        check_wallet_order(order, state, signer=signer)
    order_id = "0x" + digest.hex()
    lock_maker(session, maker)  # held until the order is stored (or refused)
    check_not_stored(session, order_id)
    check_meter_owned(session, account, order)  # before funds: whose meter it is comes first
    if mirrored is None:
        check_funds(session, order, state.funds)
    elif not mirrored(session):  # its funds less what the maker's open orders reserve (those
        # stored meanwhile too) do not cover it on the mirror: the chain decides
        state = read_chain_state(chain, maker, request)
        check_wallet_order(order, state, signer=maker)
        check_funds(session, order, state.funds)
    if account.kind == AccountKind.CUSTODIAL:  # audited in the order's own transaction
        record_signature(session, account, "market.order", order_hash=order_id)
    return store(session, settings, account, order, digest=order_id, signature=signature)

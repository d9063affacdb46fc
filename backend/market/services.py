"""Trading: markets, order intake (validated against the chain before storing), cancel,
order book, trades, history and price bars. Reads come from the indexer mirror."""

from __future__ import annotations

import secrets

from eth_utils import to_checksum_address
from sqlalchemy import case, func, or_, union_all
from sqlmodel import Session, select

from backend.accounts.custody import custodial_signer
from backend.accounts.models import Account
from backend.chain.contracts import Chain, ViewCall
from backend.chain.transactions import tx_hash_hex
from backend.core.config import Settings
from backend.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from backend.core.pagination import keyset_page
from backend.core.utc import utc_now
from backend.market import order_events
from backend.market import orders as eip712
from backend.market.models import SignedOrder
from backend.market.schemas import (
    Approvals,
    Market,
    OrderBook,
    OrderCreate,
    OrderPublic,
    OrderTerms,
    PriceBar,
    PriceLevel,
    TradePublic,
)
from indexer.models import Certificate, Device, MarketOrder, Trade

SIDES = {"sell": eip712.SELL, "buy": eip712.BUY}
PRODUCTS = {"energy": eip712.ENERGY, "rec": eip712.REC}
SIDE_NAMES = {v: k for k, v in SIDES.items()}
PRODUCT_NAMES = {v: k for k, v in PRODUCTS.items()}
DEFAULT_EXPIRY_S = 3600


class InvalidOrder(InvalidInput):
    code = "invalid-order"
    title = "The order cannot be accepted"


class InsufficientFunds(InvalidInput):
    code = "insufficient-funds"
    title = "Balance or allowance does not cover the order"


class GateClosed(InvalidInput):
    code = "gate-closed"
    title = "The delivery period has already started"


class OrderExpired(InvalidInput):
    code = "order-expired"
    title = "The order expires before it could trade"


class InvalidSignature(InvalidInput):
    code = "invalid-signature"
    title = "The EIP-712 signature is not the maker's"


class DuplicateOrder(Conflict):
    code = "duplicate-order"
    title = "This order was already submitted"


class OrderNotCancellable(Conflict):
    code = "order-not-cancellable"
    title = "The order is no longer open"


# ------------------------------------------------------------------------- markets


def energy_market_id(delivery_start: int) -> str:
    return f"energy-{delivery_start}"


def market_id_of(product: int, asset_id: int, delivery_start: int) -> str:
    return energy_market_id(delivery_start) if product == eip712.ENERGY else f"rec-{asset_id}"


def parse_market_id(market_id: str) -> tuple[int, int, int, int]:
    """(product, asset_id, delivery_start, delivery_end) of a market id."""
    kind, _, number = market_id.partition("-")
    if kind not in ("energy", "rec") or not number.isdigit() or len(number) > 18:
        raise NotFound(
            f"no market {market_id!r}: use energy-<delivery start> or rec-<certificate id>"
        )
    value = int(number)
    if kind == "energy":
        if value % eip712.SLOT_SECONDS:
            raise NotFound(f"no market {market_id!r}: delivery start must be 15-minute aligned")
        return eip712.ENERGY, 0, value, value + eip712.SLOT_SECONDS
    return eip712.REC, value, 0, 0


def list_markets(session: Session, now: int, hours: int = 24, limit_rec: int = 200) -> list[Market]:
    """The open 15-minute energy periods of the next `hours` and REC markets per certificate."""
    first = (now // eip712.SLOT_SECONDS + 1) * eip712.SLOT_SECONDS
    markets = [
        Market(
            id=energy_market_id(start),
            product="energy",
            delivery_start=start,
            delivery_end=start + eip712.SLOT_SECONDS,
            gate_closure=start,
        )
        for start in range(first, first + hours * 3600, eip712.SLOT_SECONDS)
    ]
    rows = session.exec(
        select(Certificate, Device)
        .join(Device, Device.device_id == Certificate.device_id)
        .where(Certificate.revoked.is_(False), Certificate.supply_wh > 0)
        .order_by(Certificate.certificate_id.desc())
        .limit(limit_rec)
    )
    markets += [
        Market(
            id=f"rec-{c.certificate_id}",
            product="rec",
            certificate_id=c.certificate_id,
            technology=d.technology,
            grid_area=d.grid_area,
        )
        for c, d in rows
    ]
    return markets


# -------------------------------------------------------------------------- orders


def to_order(row: SignedOrder) -> eip712.Order:
    return eip712.Order(
        maker=to_checksum_address(row.maker),
        side=row.side,
        product=row.product,
        assetId=row.asset_id,
        meterId=bytes.fromhex(row.meter_id[2:]),
        quantityWh=row.quantity_wh,
        price=row.price,
        deliveryStart=row.delivery_start,
        deliveryEnd=row.delivery_end,
        expiry=row.expiry,
        nonce=row.nonce,
        salt=int(row.salt),
    )


def build_order(
    account: Account, terms: OrderTerms, now: int, nonce: int, salt: int
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
        meter = b"\0" * 32
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


def typed_data_for(account: Account, terms: OrderTerms, chain: Chain) -> tuple[dict, str]:
    """The document a wallet signs (maker, current nonce and a fresh salt filled in)."""
    now, (nonce,) = chain.read(
        chain.view(chain.market, "nonces", to_checksum_address(account.address))
    )
    order = build_order(account, terms, now, nonce, secrets.randbits(64))
    return (
        eip712.typed_data(order, chain.chain_id, chain.market.address),
        "0x" + eip712.order_digest(order, chain.chain_id, chain.market.address).hex(),
    )


def _reserved(
    session: Session, maker: str, side: int, product: int, asset_id: int | None = None
) -> int:
    """What the maker's other open orders already commit (payment for bids, Wh for REC offers)."""
    query = select(SignedOrder).where(
        SignedOrder.maker == maker, SignedOrder.status == "open", SignedOrder.side == side
    )
    if asset_id is not None:
        query = query.where(SignedOrder.product == product, SignedOrder.asset_id == asset_id)
    total = 0
    for row in session.exec(query):
        remaining = max(row.quantity_wh - row.matched_wh, 0)
        total += eip712.payment(remaining, row.price) if side == eip712.BUY else remaining
    return total


def _funds_reads(
    chain: Chain, maker: str, side: int, product: int, asset_id: int
) -> list[ViewCall]:
    """The chain values `_check_funds` compares: token balance and allowance for bids, certificate
    balance and the market's approval for REC offers, nothing for energy offers."""
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


def _check_funds(session: Session, order: eip712.Order, funds: list) -> None:
    """`funds` are the values of `_funds_reads` for this order, read with its nonce and chain time."""
    maker = order.maker.lower()
    if order.side == eip712.BUY:
        needed = eip712.payment(order.quantityWh, order.price) + _reserved(
            session, maker, eip712.BUY, order.product
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
        needed = order.quantityWh + _reserved(
            session, maker, eip712.SELL, eip712.REC, order.assetId
        )
        held, approved = funds
        if held < needed or not approved:
            raise InsufficientFunds(
                f"offers need {needed} Wh of certificate {order.assetId}; held {held}, "
                f"market approved: {approved}",
                needed=needed,
                held=held,
            )
    if order.product == eip712.ENERGY and order.meterId == b"\0" * 32:
        raise InvalidOrder("energy orders need a meter id")


def place_order(
    session: Session, settings: Settings, chain: Chain, account: Account, request: OrderCreate
) -> SignedOrder:
    """Validate against chain state, sign (custodial) or verify (wallet), then store.

    Chain time, the maker's nonce and its funds come from one JSON-RPC batch (`Chain.read`)
    against the latest block; the checks then run in the same order as they always did."""
    maker = to_checksum_address(account.address)
    now, (current_nonce, *funds) = chain.read(
        chain.view(chain.market, "nonces", maker),
        *_funds_reads(
            chain, maker, SIDES[request.side], PRODUCTS[request.product], request.asset_id
        ),
    )
    if account.kind == "custodial":
        if request.signature or request.nonce is not None or request.salt is not None:
            raise InvalidOrder("custodial accounts send only the order terms; the API signs")
        order = build_order(account, request, now, current_nonce, secrets.randbits(64))
        signer = custodial_signer(account.encrypted_key or "", account.id, settings)
        signature = eip712.sign_order(order, signer.key, chain.chain_id, chain.market.address)
    else:
        if (
            not request.signature
            or request.nonce is None
            or request.salt is None
            or request.expiry is None
        ):
            raise InvalidOrder("wallet orders need nonce, salt, expiry and signature")
        order = build_order(account, request, now, request.nonce, int(request.salt))
        if order.nonce != current_nonce:
            raise InvalidOrder(
                f"nonce {order.nonce} is stale; the maker's nonce is {current_nonce}"
            )
        if order.salt >= 2**256:
            raise InvalidOrder("salt must fit in uint256")
        signature = bytes.fromhex(request.signature[2:])
        try:
            recovered = eip712.recover_maker(order, signature, chain.chain_id, chain.market.address)
        except Exception as exc:  # malformed r/s/v: eth_keys raises several types
            raise InvalidSignature("signature cannot be recovered") from exc
        if recovered.lower() != account.address.lower():
            raise InvalidSignature(f"signed by {recovered}, expected {maker}")
    digest = "0x" + eip712.order_digest(order, chain.chain_id, chain.market.address).hex()
    if (
        session.exec(select(SignedOrder.seq).where(SignedOrder.order_hash == digest)).first()
        is not None
    ):
        raise DuplicateOrder(f"order {digest} exists", order_id=digest)
    _check_funds(session, order, funds)
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


def mirrored(session: Session, order_hashes: list[str]) -> dict[str, MarketOrder]:
    if not order_hashes:
        return {}
    return {
        m.order_hash: m
        for m in session.exec(select(MarketOrder).where(MarketOrder.order_hash.in_(order_hashes)))
    }


def public_order(row: SignedOrder, mirror: MarketOrder | None, now: int) -> OrderPublic:
    filled = max(row.matched_wh, mirror.filled_wh if mirror else 0)
    filled = min(filled, row.quantity_wh)
    if row.status == "cancelled" or (mirror is not None and mirror.cancelled):
        status = "cancelled"
    elif filled >= row.quantity_wh:
        status = "filled"
    elif row.expiry < now or (row.product == eip712.ENERGY and row.delivery_start <= now):
        status = "expired"
    else:
        status = "partially_filled" if filled else "open"
    return OrderPublic(
        id=row.order_hash,
        seq=row.seq,
        status=status,
        market_id=market_id_of(row.product, row.asset_id, row.delivery_start),
        maker=row.maker,
        side=SIDE_NAMES[row.side],
        product=PRODUCT_NAMES[row.product],
        asset_id=row.asset_id,
        meter_id=row.meter_id,
        quantity_wh=row.quantity_wh,
        filled_wh=filled,
        remaining_wh=row.quantity_wh - filled if status in ("open", "partially_filled") else 0,
        price=row.price,
        delivery_start=row.delivery_start,
        delivery_end=row.delivery_end,
        expiry=row.expiry,
        nonce=row.nonce,
        salt=row.salt,
        cancel_tx=row.cancel_tx,
        created_at=row.created_at,
    )


def get_order(session: Session, account: Account, order_id: str) -> SignedOrder:
    row = session.exec(
        select(SignedOrder).where(SignedOrder.order_hash == order_id.lower())
    ).first()
    if row is None or (
        row.account_id != account.id and not account.has_role_any(("operator", "admin"))
    ):
        raise NotFound(f"no order {order_id}")
    return row


def list_my_orders(
    session: Session,
    account: Account,
    now: int,
    cursor: str | None,
    limit: int,
    status: str | None = None,
) -> tuple[list[OrderPublic], str | None]:
    query = select(SignedOrder).where(SignedOrder.account_id == account.id)
    rows, next_cursor = keyset_page(session, query, SignedOrder.seq, cursor, limit)
    mirror = mirrored(session, [r.order_hash for r in rows])
    items = [public_order(r, mirror.get(r.order_hash), now) for r in rows]
    if status:
        items = [i for i in items if i.status == status]
    return items, next_cursor


def cancel_order(
    session: Session, settings: Settings, chain: Chain, account: Account, order_id: str
) -> SignedOrder:
    """Cancel on chain with the maker's custodial key when the chain knows the order (or for
    any custodial order, so a leaked signature is dead too); otherwise only off chain."""
    row = get_order(session, account, order_id)
    if row.account_id != account.id:
        raise PermissionDenied("only the maker cancels an order")
    state = public_order(row, mirrored(session, [row.order_hash]).get(row.order_hash), chain.now())
    if state.status not in ("open", "partially_filled"):
        raise OrderNotCancellable(
            f"order {row.order_hash} is {state.status}", order_status=state.status
        )
    on_chain = row.matched_wh > 0 or row.order_hash in mirrored(session, [row.order_hash])
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
    row.status = "cancelled"
    row.updated_at = utc_now()
    session.add(row)
    order_events.announce(session, settings, "order.cancelled", row)
    session.commit()
    session.refresh(row)
    return row


def approve_market(settings: Settings, chain: Chain, account: Account) -> Approvals:
    """Custodial: let the market take this account's gUSD (bids) and certificates (REC offers),
    which `_check_funds` requires. Wallet accounts send `approve`/`setApprovalForAll` themselves."""
    if account.kind != "custodial" or not account.encrypted_key:
        raise InvalidOrder("wallet accounts approve the market from their wallet")
    signer = custodial_signer(account.encrypted_key, account.id, settings)
    market = chain.market.address
    token = chain.transact(signer, chain.token.functions.approve(market, 2**256 - 1))
    registry = chain.transact(signer, chain.registry.functions.setApprovalForAll(market, True))
    return Approvals(
        token_tx=tx_hash_hex(token),
        registry_tx=tx_hash_hex(registry),
    )


# ------------------------------------------------------------------ book and trades


def open_orders(
    session: Session, product: int, asset_id: int, delivery_start: int, now: int
) -> list[SignedOrder]:
    """Live orders of one market (not cancelled, not expired, not fully matched), by seq."""
    query = select(SignedOrder).where(
        SignedOrder.status == "open",
        SignedOrder.product == product,
        SignedOrder.asset_id == asset_id,
        SignedOrder.delivery_start == delivery_start,
        SignedOrder.expiry >= now,
        SignedOrder.matched_wh < SignedOrder.quantity_wh,
    )
    rows = list(session.exec(query.order_by(SignedOrder.seq)))
    mirror = mirrored(session, [r.order_hash for r in rows])
    live = []
    for row in rows:
        m = mirror.get(row.order_hash)
        if m is not None and (m.cancelled or m.filled_wh >= row.quantity_wh):
            continue
        if m is not None and m.filled_wh > row.matched_wh:
            row.matched_wh = m.filled_wh  # filled elsewhere (e.g. fillOrder by a taker)
        live.append(row)
    return live


def live_levels(product: int, asset_id: int, start: int, now: int):
    """SELECT side, price, remaining Wh, order count of the live orders of one market, grouped
    by (side, price): open, unexpired, not fully matched, with the mirror's fills and cancels
    joined in. Callers narrow it (`.where`), order and limit it."""
    filled = func.coalesce(MarketOrder.filled_wh, 0)
    done = case((filled > SignedOrder.matched_wh, filled), else_=SignedOrder.matched_wh)
    return (
        select(
            SignedOrder.side,
            SignedOrder.price,
            func.sum(SignedOrder.quantity_wh - done).label("remaining"),
            func.count().label("orders"),
        )
        .select_from(SignedOrder)
        .outerjoin(MarketOrder, MarketOrder.order_hash == SignedOrder.order_hash)
        .where(
            SignedOrder.status == "open",
            SignedOrder.product == product,
            SignedOrder.asset_id == asset_id,
            SignedOrder.delivery_start == start,
            SignedOrder.expiry >= now,
            SignedOrder.matched_wh < SignedOrder.quantity_wh,
            or_(
                MarketOrder.order_hash.is_(None),
                (MarketOrder.cancelled.is_(False))
                & (MarketOrder.filled_wh < SignedOrder.quantity_wh),
            ),
        )
        .group_by(SignedOrder.side, SignedOrder.price)
    )


def market_is_open(product: int, start: int, now: int) -> bool:
    """REC markets never close; an energy period closes at its start (gate closure)."""
    return product == eip712.REC or start > now


def order_book(session: Session, market_id: str, now: int, depth: int = 50) -> OrderBook:
    """Live orders aggregated by price, both sides in one SQL statement (one round trip)."""
    product, asset_id, start, _ = parse_market_id(market_id)
    levels: dict[int, list[PriceLevel]] = {eip712.BUY: [], eip712.SELL: []}
    if market_is_open(product, start, now):
        sides = [
            live_levels(product, asset_id, start, now)
            .where(SignedOrder.side == side)
            .order_by(SignedOrder.price.desc() if descending else SignedOrder.price)
            .limit(depth)
            .subquery()
            for side, descending in ((eip712.BUY, True), (eip712.SELL, False))
        ]
        both = union_all(*(select(side) for side in sides)).subquery()
        for side, price, remaining, orders in session.execute(select(both)):
            levels[side].append(PriceLevel(price=price, quantity_wh=int(remaining), orders=orders))
        levels[eip712.BUY].sort(key=lambda level: -level.price)
        levels[eip712.SELL].sort(key=lambda level: level.price)
    return OrderBook(
        market_id=market_id, bids=levels[eip712.BUY], asks=levels[eip712.SELL], timestamp=now
    )


def public_trade(t: Trade) -> TradePublic:
    market = (
        energy_market_id(t.delivery_start or 0)
        if t.product == "energy"
        else f"rec-{t.certificate_id}"
    )
    return TradePublic(
        trade_id=t.trade_id,
        market_id=market,
        product=t.product,
        status=t.status,
        seller=t.seller,
        buyer=t.buyer,
        quantity_wh=t.quantity_wh,
        price=t.price,
        payment=t.payment,
        delivery_start=t.delivery_start,
        delivery_end=t.delivery_end,
        certificate_id=t.certificate_id,
        sell_order_hash=t.sell_order_hash,
        buy_order_hash=t.buy_order_hash,
        tx_hash=t.created_tx,
        block_number=t.created_block,
        timestamp=t.created_at,
    )


def _market_filter(query, market_id: str | None):
    if market_id is None:
        return query
    product, asset_id, start, _ = parse_market_id(market_id)
    if product == eip712.ENERGY:
        return query.where(Trade.product == "energy", Trade.delivery_start == start)
    return query.where(Trade.product == "rec", Trade.certificate_id == asset_id)


def list_trades(
    session: Session,
    market_id: str | None,
    cursor: str | None,
    limit: int,
    address: str | None = None,
) -> tuple[list[TradePublic], str | None]:
    query = _market_filter(select(Trade), market_id)
    if address is not None:
        query = query.where(or_(Trade.seller == address, Trade.buyer == address))
    rows, next_cursor = keyset_page(session, query, Trade.trade_id, cursor, limit)
    return [public_trade(t) for t in rows], next_cursor


def price_bars(
    session: Session, start: int | None, end: int | None, limit: int = 500
) -> list[PriceBar]:
    """OHLC and volume per 15-minute delivery period of energy trades (by trade id order)."""
    query = select(Trade).where(Trade.product == "energy")
    if start is not None:
        query = query.where(Trade.delivery_start >= start)
    if end is not None:
        query = query.where(Trade.delivery_start < end)
    periods = session.exec(
        select(Trade.delivery_start)
        .where(query.whereclause)
        .group_by(Trade.delivery_start)
        .order_by(Trade.delivery_start.desc())
        .limit(limit)
    ).all()
    if not periods:
        return []
    bars: dict[int, PriceBar] = {}
    for t in session.exec(query.where(Trade.delivery_start.in_(periods)).order_by(Trade.trade_id)):
        bar = bars.get(t.delivery_start)
        if bar is None:
            bars[t.delivery_start] = PriceBar(
                market_id=energy_market_id(t.delivery_start),
                delivery_start=t.delivery_start,
                delivery_end=t.delivery_end,
                open=t.price,
                high=t.price,
                low=t.price,
                close=t.price,
                volume_wh=t.quantity_wh,
                trades=1,
            )
        else:
            bar.high, bar.low, bar.close = max(bar.high, t.price), min(bar.low, t.price), t.price
            bar.volume_wh += t.quantity_wh
            bar.trades += 1
    return [bars[p] for p in sorted(bars)]


def count_open_orders(session: Session) -> int:
    return session.exec(
        select(func.count()).select_from(SignedOrder).where(SignedOrder.status == "open")
    ).one()

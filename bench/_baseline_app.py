"""Baselines for api_read, api_order_submit and api_private_read: the same work as a plain
FastAPI + SQLModel app (no auth beyond a key lookup, no problem handlers, no middleware, no
chain clock, no mirror join)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header
from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from backend.accounts.models import Account, ApiKey
from backend.accounts.security import hash_api_key
from backend.core.config import get_settings
from backend.core.db import make_engine
from backend.market.models import OrderStatus, SignedOrder
from backend.meters.models import Meter, MeterReading
from indexer.models import MarketBalance, TokenBalance, Trade, TradeStatus

engine = make_engine(get_settings().database_url)
app = FastAPI()


def db() -> Iterator[Session]:
    with Session(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(db)]


@app.get("/orderbook")
def orderbook(market_id: str, session: SessionDep) -> dict[str, Any]:
    start = int(market_id.split("-")[1])
    rows = session.exec(
        select(
            SignedOrder.side,
            SignedOrder.price,
            func.sum(SignedOrder.quantity_wh - SignedOrder.matched_wh),
            func.count(),
        )
        .where(
            SignedOrder.status == OrderStatus.OPEN,
            SignedOrder.product == 0,
            SignedOrder.delivery_start == start,
        )
        .group_by(col(SignedOrder.side), col(SignedOrder.price))
    ).all()
    bids = sorted(((p, q, n) for s, p, q, n in rows if s == 1), reverse=True)[:50]
    asks = sorted((p, q, n) for s, p, q, n in rows if s == 0)[:50]
    return {
        "market_id": market_id,
        "bids": [{"price": p, "quantity_wh": q, "orders": n} for p, q, n in bids],
        "asks": [{"price": p, "quantity_wh": q, "orders": n} for p, q, n in asks],
    }


@app.get("/trades")
def trades(session: SessionDep) -> dict[str, Any]:
    latest = select(Trade).order_by(col(Trade.trade_id).desc()).limit(100)
    return {"items": [t.model_dump() for t in session.exec(latest)]}


@app.post("/orders", status_code=202)
def submit_order(body: dict[str, Any], session: SessionDep) -> dict[str, str]:
    """Baseline for api_order_submit: recover the EIP-712 signer and store the row — no auth,
    no chain reads (nonce, gate closure, funds), no problem handlers, no idempotency."""
    import uuid as _uuid

    from eth_account import Account as _EthAccount
    from eth_account.messages import encode_typed_data

    from backend.market import orders as eip712

    # The message carries wide uints as decimal strings (as served to wallets): back to ints.
    message: dict[str, Any] = {
        name: int(value) if isinstance(value, str) and value.isdigit() else value
        for name, value in body["order"].items()
    }
    message["meterId"] = bytes.fromhex(message["meterId"][2:])
    order = eip712.Order(**message)
    document = eip712.typed_data(order, body["chain_id"], body["market"])
    maker = _EthAccount.recover_message(
        encode_typed_data(full_message=document), signature=bytes.fromhex(body["signature"][2:])
    )
    row = SignedOrder(
        order_hash="0x" + eip712.order_digest(order, body["chain_id"], body["market"]).hex(),
        account_id=_uuid.UUID(body["account_id"]),
        custodial=False,
        maker=maker.lower(),
        side=order.side,
        product=order.product,
        asset_id=order.assetId,
        meter_id=body["meter_id"],
        quantity_wh=order.quantityWh,
        price=order.price,
        delivery_start=order.deliveryStart,
        delivery_end=order.deliveryEnd,
        expiry=order.expiry,
        nonce=order.nonce,
        salt=str(order.salt),
        signature=body["signature"],
    )
    session.add(row)
    session.commit()
    return {"id": row.order_hash}


@app.post("/nothing", status_code=202)
async def nothing() -> dict[str, str]:
    """The floor of api_order_submit: the same wrk load (bodies unread) answered at once."""
    return {}


def _caller(session: Session, api_key: str) -> Account:
    """The key's account: one indexed lookup each (no expiry, scope or rate limit)."""
    key = session.exec(select(ApiKey).where(ApiKey.secret_hash == hash_api_key(api_key))).one()
    account = session.get(Account, key.account_id)
    assert account is not None
    return account


@app.get("/my-orders")
def my_orders(session: SessionDep, x_api_key: Annotated[str, Header()]) -> dict[str, Any]:
    """Baseline for api_private_read: the caller's newest 100 orders, rows as stored."""
    account = _caller(session, x_api_key)
    rows = session.exec(
        select(SignedOrder)
        .where(SignedOrder.account_id == account.id)
        .order_by(col(SignedOrder.seq).desc())
        .limit(100)
    )
    return {"items": [row.model_dump(mode="json") for row in rows]}


@app.get("/balance")
def balance(session: SessionDep, x_api_key: Annotated[str, Header()]) -> dict[str, Any]:
    """Baseline for api_private_read: the caller's mirrored balances and open energy trades."""
    me = _caller(session, x_api_key).address
    token, market = session.get(TokenBalance, me), session.get(MarketBalance, me)
    trades = session.exec(
        select(Trade).where(
            Trade.status == TradeStatus.OPEN, or_(col(Trade.seller) == me, col(Trade.buyer) == me)
        )
    )
    return {
        "token_balance": str(token.balance if token else 0),
        "withdrawable": str(market.withdrawable if market else 0),
        "trades": [t.model_dump(mode="json") for t in trades],
    }


@app.get("/history")
def history(session: SessionDep, x_api_key: Annotated[str, Header()]) -> dict[str, Any]:
    """Baseline for api_private_read (history and transfers): the caller's newest 100 trades,
    rows as stored."""
    me = _caller(session, x_api_key).address
    trades = session.exec(
        select(Trade)
        .where(or_(col(Trade.seller) == me, col(Trade.buyer) == me))
        .order_by(col(Trade.trade_id).desc())
        .limit(100)
    )
    return {"items": [t.model_dump(mode="json") for t in trades]}


@app.get("/meter-series")
def meter_series(
    session: SessionDep, x_api_key: Annotated[str, Header()], meter_id: str
) -> dict[str, Any]:
    """Baseline for api_private_read's meter series: the owner check, then the day's (bench
    data: 2026-01-01) import readings summed per hour."""
    account = _caller(session, x_api_key)
    meter = session.get(Meter, meter_id)
    assert meter is not None and meter.owner_id == account.id
    hours: dict[int, int] = {}
    for start, wh in session.exec(
        select(MeterReading.interval_start, MeterReading.import_wh).where(
            MeterReading.meter_id == meter_id,
            MeterReading.interval_start >= 1_767_225_600,
            MeterReading.interval_start < 1_767_225_600 + 86_400,
        )
    ):
        hours[start // 3600] = hours.get(start // 3600, 0) + (wh or 0)
    return {"points": [{"hour": h, "wh": wh} for h, wh in sorted(hours.items())]}

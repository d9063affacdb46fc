"""Baseline for api_read: the same two reads as a plain FastAPI + SQLModel app (no auth,
no problem handlers, no middleware, no chain clock, no mirror join)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from sqlalchemy import func
from sqlmodel import Session, col, select

import backend.accounts.models  # noqa: F401 - the accounts table SignedOrder refers to
from backend.core.config import get_settings
from backend.core.db import make_engine
from backend.market.models import OrderStatus, SignedOrder
from indexer.models import Trade

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

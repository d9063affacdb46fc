"""Baseline for api_read: the same two reads as a plain FastAPI + SQLModel app (no auth,
no problem handlers, no middleware, no chain clock, no mirror join)."""
from __future__ import annotations

from fastapi import Depends, FastAPI
from sqlalchemy import func
from sqlmodel import Session, select

from backend.core.config import settings
from backend.core.db import make_engine
from backend.market.models import SignedOrder
from indexer.models import Trade

engine = make_engine(settings.database_url)
app = FastAPI()


def db():
    with Session(engine) as session:
        yield session


@app.get("/orderbook")
def orderbook(market_id: str, session: Session = Depends(db)):
    start = int(market_id.split("-")[1])
    rows = session.exec(
        select(SignedOrder.side, SignedOrder.price, func.sum(SignedOrder.quantity_wh - SignedOrder.matched_wh),
               func.count()).where(SignedOrder.status == "open", SignedOrder.product == 0,
                                   SignedOrder.delivery_start == start)
        .group_by(SignedOrder.side, SignedOrder.price)).all()
    bids = sorted(((p, q, n) for s, p, q, n in rows if s == 1), reverse=True)[:50]
    asks = sorted((p, q, n) for s, p, q, n in rows if s == 0)[:50]
    return {"market_id": market_id, "bids": [{"price": p, "quantity_wh": q, "orders": n} for p, q, n in bids],
            "asks": [{"price": p, "quantity_wh": q, "orders": n} for p, q, n in asks]}


@app.get("/trades")
def trades(session: Session = Depends(db)):
    return {"items": [t.model_dump() for t in session.exec(select(Trade).order_by(Trade.trade_id.desc()).limit(100))]}

"""The markets open for orders: the coming 15-minute energy periods and one market per REC."""

from __future__ import annotations

from sqlmodel import Session, col, select

from backend.market import orders as eip712
from backend.market.ids import energy_market_id, rec_market_id
from backend.market.schemas import Market
from indexer.models import Certificate, Device


def list_markets(
    session: Session, *, now: int, hours: int = 24, limit_rec: int = 200
) -> list[Market]:
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
        .join(Device, col(Device.device_id) == col(Certificate.device_id))
        .where(col(Certificate.revoked).is_(False), col(Certificate.supply_wh) > 0)
        .order_by(col(Certificate.certificate_id).desc())
        .limit(limit_rec)
    )
    markets += [
        Market(
            id=rec_market_id(c.certificate_id),
            product="rec",
            certificate_id=c.certificate_id,
            technology=d.technology,
            grid_area=d.grid_area,
        )
        for c, d in rows
    ]
    return markets

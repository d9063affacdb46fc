"""Aggregated public reads over the indexer's mirror (plain functions taking a session)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, case, func
from sqlalchemy import select as select_rows
from sqlmodel import Session, col, select

from backend.energy.services import transfer_status
from backend.public.schemas import (
    ChainSummary,
    ClaimPublic,
    EnergyPeriod,
    IssuanceHour,
    MarketSummary,
    RegistrySummary,
    SettlementPublic,
    Summary,
)
from indexer.models import (
    Certificate,
    Claim,
    Device,
    DeviceStatus,
    IndexerCursor,
    Trade,
    TradeStatus,
)


def _delivered() -> ColumnElement[int | None]:
    """min(metered, contracted) Wh of a trade; NULL until settled (portable: no LEAST in SQLite)."""
    delivered = col(Trade.delivered_wh)
    return case(
        (delivered.is_(None), None),
        (delivered < col(Trade.quantity_wh), delivered),
        else_=col(Trade.quantity_wh),
    )


def summary(session: Session) -> Summary:
    cursor = session.exec(
        select(IndexerCursor).order_by(col(IndexerCursor.block_number).desc())
    ).first()
    energy = col(Trade.product) == "energy"
    status = col(Trade.status)
    counts = session.execute(
        select_rows(
            func.count(),
            func.count().filter(status == TradeStatus.OPEN),
            func.count().filter(status == TradeStatus.SETTLED),
            func.count().filter(status == TradeStatus.RECLAIMED),
            func.coalesce(func.sum(col(Trade.quantity_wh)).filter(energy), 0),
            func.coalesce(func.sum(_delivered()).filter(energy), 0),
            func.coalesce(func.sum(col(Trade.penalty)), 0),
        )
    ).one()
    by_status = select(col(Device.status), func.count()).group_by(col(Device.status))
    devices: dict[str, int] = dict(session.exec(by_status).all())
    capacity = session.exec(
        select(func.coalesce(func.sum(col(Device.capacity_w)), 0)).where(
            col(Device.status) == DeviceStatus.APPROVED
        )
    ).one()
    certificates, issued, claimed = session.exec(
        select(
            func.count(),
            func.coalesce(func.sum(col(Certificate.volume_wh)), 0),
            func.coalesce(func.sum(col(Certificate.claimed_wh)), 0),
        ).where(col(Certificate.revoked).is_(False))
    ).one()
    claims = session.exec(select(func.count()).select_from(Claim)).one()
    return Summary(
        chain=ChainSummary(
            indexed_block=cursor.block_number if cursor else None,
            indexed_timestamp=cursor.block_timestamp if cursor else None,
            head_block=cursor.head_block if cursor else None,
        ),
        market=MarketSummary(
            trades=counts[0],
            open_trades=counts[1],
            settled_trades=counts[2],
            reclaimed_trades=counts[3],
            energy_traded_wh=int(counts[4]),
            energy_delivered_wh=int(counts[5]),
            penalties=int(counts[6]),
        ),
        registry=RegistrySummary(
            devices=devices,
            capacity_w=int(capacity),
            certificates=certificates,
            issued_wh=int(issued),
            claimed_wh=int(claimed),
            claims=claims,
        ),
    )


def settlements(session: Session, *, now: int, limit: int) -> list[SettlementPublic]:
    """Newest energy trades first, with their metered and delivered Wh once settled."""
    rows = session.exec(
        select(Trade)
        .where(col(Trade.product) == "energy")
        .order_by(col(Trade.trade_id).desc())
        .limit(limit)
    )
    return [
        SettlementPublic(
            trade_id=t.trade_id,
            delivery_start=t.delivery_start or 0,
            delivery_end=t.delivery_end or 0,
            contracted_wh=t.quantity_wh,
            metered_wh=t.delivered_wh,
            delivered_wh=None if t.delivered_wh is None else min(t.delivered_wh, t.quantity_wh),
            price=t.price,
            payment=t.payment,
            payout=t.seller_payout,
            penalty=t.penalty,
            refund=t.buyer_refund,
            status=transfer_status(t, now),
            settled_tx=t.closed_tx,
        )
        for t in rows
    ]


def energy_periods(session: Session, limit: int) -> list[EnergyPeriod]:
    """Per delivery period, oldest first among the newest `limit` periods."""
    delivered = _delivered()
    start, end = col(Trade.delivery_start), col(Trade.delivery_end)
    rows = session.execute(
        select_rows(
            start,
            end,
            func.count(),
            func.sum(col(Trade.quantity_wh)),
            func.coalesce(func.sum(delivered), 0),
            func.count().filter(col(Trade.status) == TradeStatus.SETTLED),
        )
        .where(col(Trade.product) == "energy")
        .group_by(start, end)
        .order_by(start.desc())
        .limit(limit)
    ).all()
    return [
        EnergyPeriod(
            delivery_start=r[0],
            delivery_end=r[1],
            trades=r[2],
            contracted_wh=int(r[3]),
            delivered_wh=int(r[4]),
            settled_trades=r[5],
        )
        for r in reversed(rows)
    ]


def issuance_by_hour(session: Session, limit: int) -> list[IssuanceHour]:
    """Certificates and Wh per generation hour (period start truncated to the hour)."""
    start = col(Certificate.period_start)
    hour = (start - start % 3600).label("hour")
    rows = session.exec(
        select(hour, func.count(), func.sum(col(Certificate.volume_wh)))
        .where(col(Certificate.revoked).is_(False))
        .group_by(hour)
        .order_by(hour.desc())
        .limit(limit)
    ).all()
    return [IssuanceHour(hour=r[0], certificates=r[1], volume_wh=int(r[2])) for r in reversed(rows)]


def recent_claims(session: Session, limit: int) -> list[ClaimPublic]:
    technology = (
        select(col(Device.technology))
        .join(Certificate, col(Certificate.device_id) == col(Device.device_id))
        .where(col(Certificate.certificate_id) == col(Claim.certificate_id))
        .scalar_subquery()
    )
    rows = session.exec(
        select(Claim, technology).order_by(col(Claim.claim_id).desc()).limit(limit)
    ).all()
    return [
        ClaimPublic(
            claim_id=c.claim_id,
            certificate_id=c.certificate_id,
            amount_wh=c.amount_wh,
            beneficiary=c.beneficiary,
            purpose=c.purpose,
            technology=tech,
            tx_hash=c.tx_hash,
            block_number=c.block_number,
            proof=f"/v1/recs/claims/{c.claim_id}/proof",
        )
        for c, tech in rows
    ]

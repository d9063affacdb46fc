"""Aggregated public reads over the indexer's mirror (plain functions taking a session)."""

from __future__ import annotations

from sqlalchemy import case, func
from sqlmodel import Session, select

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
from indexer.models import Certificate, Claim, Device, IndexerCursor, Trade


def _delivered():
    """min(metered, contracted) Wh of a trade; NULL until settled (portable: no LEAST in SQLite)."""
    return case(
        (Trade.delivered_wh.is_(None), None),
        (Trade.delivered_wh < Trade.quantity_wh, Trade.delivered_wh),
        else_=Trade.quantity_wh,
    )


def summary(session: Session) -> Summary:
    cursor = session.exec(select(IndexerCursor).order_by(IndexerCursor.block_number.desc())).first()
    energy = Trade.product == "energy"
    counts = session.exec(
        select(
            func.count(),
            func.count().filter(Trade.status == "open"),
            func.count().filter(Trade.status == "settled"),
            func.count().filter(Trade.status == "reclaimed"),
            func.coalesce(func.sum(Trade.quantity_wh).filter(energy), 0),
            func.coalesce(func.sum(_delivered()).filter(energy), 0),
            func.coalesce(func.sum(Trade.penalty), 0),
        )
    ).one()
    devices = dict(session.exec(select(Device.status, func.count()).group_by(Device.status)).all())
    capacity = session.exec(
        select(func.coalesce(func.sum(Device.capacity_w), 0)).where(Device.status == "approved")
    ).one()
    certificates, issued, claimed = session.exec(
        select(
            func.count(),
            func.coalesce(func.sum(Certificate.volume_wh), 0),
            func.coalesce(func.sum(Certificate.claimed_wh), 0),
        ).where(Certificate.revoked.is_(False))
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


def settlements(session: Session, now: int, limit: int) -> list[SettlementPublic]:
    """Newest energy trades first, with their metered and delivered Wh once settled."""
    rows = session.exec(
        select(Trade).where(Trade.product == "energy").order_by(Trade.trade_id.desc()).limit(limit)
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
    rows = session.exec(
        select(
            Trade.delivery_start,
            Trade.delivery_end,
            func.count(),
            func.sum(Trade.quantity_wh),
            func.coalesce(func.sum(delivered), 0),
            func.count().filter(Trade.status == "settled"),
        )
        .where(Trade.product == "energy")
        .group_by(Trade.delivery_start, Trade.delivery_end)
        .order_by(Trade.delivery_start.desc())
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
    hour = (Certificate.period_start - Certificate.period_start % 3600).label("hour")
    rows = session.exec(
        select(hour, func.count(), func.sum(Certificate.volume_wh))
        .where(Certificate.revoked.is_(False))
        .group_by(hour)
        .order_by(hour.desc())
        .limit(limit)
    ).all()
    return [IssuanceHour(hour=r[0], certificates=r[1], volume_wh=int(r[2])) for r in reversed(rows)]


def recent_claims(session: Session, limit: int) -> list[ClaimPublic]:
    technology = (
        select(Device.technology)
        .join(Certificate, Certificate.device_id == Device.device_id)
        .where(Certificate.certificate_id == Claim.certificate_id)
        .scalar_subquery()
    )
    rows = session.exec(
        select(Claim, technology).order_by(Claim.claim_id.desc()).limit(limit)
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

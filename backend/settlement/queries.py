"""Read side of settlement for the API: reconciliation records visible to an account."""

from __future__ import annotations

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from backend.accounts.models import Account, Role
from backend.settlement.errors import ReconciliationAccessDenied, ReconciliationNotFound
from backend.settlement.models import DiscrepancyFlag, Reconciliation, SettlementCorrection
from backend.settlement.schemas import (
    DiscrepancyFlagPublic,
    ReconciliationPublic,
    SettlementCorrectionPublic,
)
from indexer.models import Trade


def public(session: Session, record: Reconciliation, buyer: str | None) -> ReconciliationPublic:
    corrections = session.exec(
        select(SettlementCorrection)
        .where(SettlementCorrection.trade_id == record.trade_id)
        .order_by(col(SettlementCorrection.id))
    ).all()
    return ReconciliationPublic(
        **record.model_dump(),
        buyer=buyer,
        corrections=[SettlementCorrectionPublic(**c.model_dump()) for c in corrections],
    )


def reconciliation(session: Session, account: Account, trade_id: int) -> ReconciliationPublic:
    record = session.get(Reconciliation, trade_id)
    if record is None:
        raise ReconciliationNotFound(f"trade {trade_id} has not been reconciled", trade_id=trade_id)
    trade = session.get(Trade, trade_id)
    buyer = trade.buyer.lower() if trade else None
    parties = {record.seller.lower(), buyer}
    if not account.has_role(Role.OPERATOR) and account.address.lower() not in parties:
        raise ReconciliationAccessDenied(f"trade {trade_id} is not yours", trade_id=trade_id)
    return public(session, record, buyer)


def reconciliations(
    session: Session, account: Account, period_end: int | None = None, limit: int = 100
) -> list[ReconciliationPublic]:
    query = select(Reconciliation, Trade.buyer).join(
        Trade, col(Trade.trade_id) == col(Reconciliation.trade_id), isouter=True
    )
    if period_end is not None:
        query = query.where(Reconciliation.period_end == period_end)
    if not account.has_role(Role.OPERATOR):
        me = account.address.lower()
        query = query.where(
            or_(func.lower(Reconciliation.seller) == me, func.lower(Trade.buyer) == me)
        )
    rows = session.exec(query.order_by(col(Reconciliation.trade_id).desc()).limit(limit)).all()
    return [public(session, record, buyer.lower() if buyer else None) for record, buyer in rows]


def flags(session: Session, limit: int = 200) -> list[DiscrepancyFlagPublic]:
    rows = session.exec(
        select(DiscrepancyFlag).order_by(col(DiscrepancyFlag.id).desc()).limit(limit)
    ).all()
    return [DiscrepancyFlagPublic(**f.model_dump()) for f in rows]

"""Reconciliation records (what was sold, metered, delivered, paid) and discrepancy flags."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from backend.accounts.models import Role, Scope
from backend.api.deps import Reader, SessionDep, require_role, require_scope
from backend.core.json_ints import MAX_SAFE_INTEGER
from backend.settlement import queries
from backend.settlement.schemas import DiscrepancyFlagPublic, ReconciliationPublic

router = APIRouter(prefix="/settlement", tags=["settlement"])


@router.get("/reconciliations", response_model=list[ReconciliationPublic])
def list_reconciliations(
    session: SessionDep,
    account: Reader,
    period_end: Annotated[int | None, Query(ge=0, le=MAX_SAFE_INTEGER)] = None,
    limit: int = Query(default=100, ge=1, le=1_000),
) -> list[ReconciliationPublic]:
    """The caller's trades as seller or buyer (operators: every trade), newest first."""
    return queries.reconciliations(session, account, period_end, limit)


@router.get("/reconciliations/{trade_id}", response_model=ReconciliationPublic)
def get_reconciliation(
    trade_id: Annotated[int, Path(ge=1, le=MAX_SAFE_INTEGER)],
    session: SessionDep,
    account: Reader,
) -> ReconciliationPublic:
    return queries.reconciliation(session, account, trade_id)


@router.get(
    "/flags",
    response_model=list[DiscrepancyFlagPublic],
    dependencies=[require_role(Role.OPERATOR), require_scope(Scope.READ)],
)
def list_flags(
    session: SessionDep, limit: int = Query(default=200, ge=1, le=1_000)
) -> list[DiscrepancyFlagPublic]:
    return queries.flags(session, limit)

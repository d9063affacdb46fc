"""`/v1/public/...`: aggregated, read-only views for the dashboard; no credentials needed.

Only data that is public on chain anyway (trades, settlements, certificates, claims),
summed or listed without meter ids; per-household energy stays behind authentication.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.api.deps import ChainDep, SessionDep
from backend.public import services
from backend.public.schemas import (
    ClaimPublic,
    EnergyPeriod,
    IssuanceHour,
    SettlementPublic,
    Summary,
)

router = APIRouter(prefix="/public", tags=["public"])

Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/summary", response_model=Summary)
def summary(session: SessionDep) -> Summary:
    """Indexed block, trade and settlement totals, devices, certificates and claims."""
    return services.summary(session)


@router.get("/settlements", response_model=list[SettlementPublic])
def settlements(session: SessionDep, chain: ChainDep, limit: Limit = 50) -> list[SettlementPublic]:
    """Energy trades, newest first: contracted/metered/delivered Wh, payout, penalty, status."""
    return services.settlements(session, now=chain.now(max_age_s=1.0), limit=limit)


@router.get("/energy/periods", response_model=list[EnergyPeriod])
def energy_periods(session: SessionDep, limit: Limit = 96) -> list[EnergyPeriod]:
    """Neighbourhood totals per delivery period (no household appears on its own)."""
    return services.energy_periods(session, limit)


@router.get("/recs/issuance", response_model=list[IssuanceHour])
def issuance(session: SessionDep, limit: Limit = 48) -> list[IssuanceHour]:
    """Certificates issued per generation hour."""
    return services.issuance_by_hour(session, limit)


@router.get("/recs/claims", response_model=list[ClaimPublic])
def claims(session: SessionDep, limit: Limit = 50) -> list[ClaimPublic]:
    """Retirements, newest first, each with the public proof endpoint to verify it on chain."""
    return services.recent_claims(session, limit)

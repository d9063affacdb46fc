"""OpenADR VEN management (`/v1/openadr/vens`, operators): the VENs the VTN knows with their
last registration, contact, poll and status; enrol one (a client certificate from the
development CA); revoke one (its next message to the VTN is refused with 452)."""

from __future__ import annotations

from fastapi import APIRouter

from backend.accounts.models import Role
from backend.api.deps import Reader, SessionAccount, SessionDep, SettingsDep, require_role
from backend.api.problem_docs import raises
from backend.openadr import management, registry
from backend.openadr.errors import (
    VenCertificateUnavailable,
    VenExists,
    VenInvalid,
    VenNotFound,
)
from backend.openadr.schemas import VenCreate, VenEnrolled, VenPublic

router = APIRouter(prefix="/openadr", tags=["openadr"], dependencies=[require_role(Role.OPERATOR)])


@router.get("/vens", response_model=list[VenPublic])
def list_vens(
    session: SessionDep, account: Reader, include_revoked: bool = False
) -> list[VenPublic]:
    """Every VEN (operators), with its last registration, contact, poll and status report."""
    return management.views(session, include_revoked=include_revoked)


@router.post(
    "/vens",
    response_model=VenEnrolled,
    status_code=201,
    responses=raises(VenExists, VenInvalid, VenCertificateUnavailable),
)
def enrol_ven(
    data: VenCreate, session: SessionDep, settings: SettingsDep, account: SessionAccount
) -> VenEnrolled:
    """Enrol a VEN (operators, signed in: the answer may carry a private key, shown once)."""
    enrolled = management.enrol(session, settings, data)
    session.commit()
    return enrolled


@router.delete("/vens/{ven_id}", response_model=VenPublic, responses=raises(VenNotFound))
def revoke_ven(ven_id: str, session: SessionDep, account: SessionAccount) -> VenPublic:
    """Revoke a VEN: its certificate no longer admits it; its history stays."""
    ven = registry.revoke_ven(session, ven_id=ven_id)
    session.commit()
    return management.ven_view(session, ven)

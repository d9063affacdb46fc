"""`/v1/admin/...`: account and role administration (the admin role only)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from backend.accounts import roles as services
from backend.accounts.models import Role
from backend.accounts.schemas import AccountAdminView, RolesUpdate, RolesUpdated
from backend.api.deps import SessionAccount, SessionDep, SettingsDep, require_role, require_scope
from backend.audit import queries as audit_queries
from backend.audit.schemas import AuditEntryPublic, AuditVerification
from backend.chain.contracts import chain_for
from backend.market.schemas import Page

# admin power is never an API key's: every route needs an admin's session
router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[require_role(Role.ADMIN), require_scope(None)],
)


@router.get("/accounts", response_model=Page[AccountAdminView])
def accounts(
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    role: Role | None = None,
) -> Page[AccountAdminView]:
    """Every account (by id), optionally only those holding `role`."""
    items, next_cursor = services.list_accounts(session, cursor=cursor, limit=limit, role=role)
    return Page(items=items, next_cursor=next_cursor)


@router.put("/accounts/{account_id}/roles", response_model=RolesUpdated)
def set_roles(
    account_id: uuid.UUID,
    body: RolesUpdate,
    admin: SessionAccount,
    session: SessionDep,
    settings: SettingsDep,
) -> RolesUpdated:
    """Replace the account's roles; effective from its next request. The API sends nothing on
    chain (it holds no admin key): `chain_changes_needed` lists the registrar, issuer, operator
    and meter-data-provider grants/revocations to propose on the admin timelock."""
    return services.set_roles(
        session,
        lambda: chain_for(settings),
        by=admin,
        account_id=account_id,
        names=body.roles,
    )


@router.get("/audit", response_model=Page[AuditEntryPublic])
def audit_log(
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[AuditEntryPublic]:
    """The audit trail, newest first: logins (and failures), API keys, role changes, custodial
    signatures, meter approvals. Each entry carries the hash of the one before it."""
    items, next_cursor = audit_queries.entries(session, cursor=cursor, limit=limit, action=action)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/audit/verification", response_model=AuditVerification)
def audit_verification(session: SessionDep) -> AuditVerification:
    """Recompute the hash chain: whether any entry was changed or deleted, and the head hash to
    keep elsewhere (deleting the newest entries only shows against a head recorded before)."""
    return audit_queries.verification(session)

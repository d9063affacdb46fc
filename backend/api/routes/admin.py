"""`/v1/admin/...`: account and role administration (the admin role only)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from backend.accounts import roles as services
from backend.accounts.models import Role
from backend.accounts.schemas import AccountAdminView, RolesUpdate, RolesUpdated
from backend.api.deps import CurrentAccount, SessionDep, SettingsDep, require_role
from backend.chain.contracts import chain_for
from backend.market.schemas import Page

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[require_role(Role.ADMIN)])


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
    admin: CurrentAccount,
    session: SessionDep,
    settings: SettingsDep,
) -> RolesUpdated:
    """Replace the account's roles; effective from its next request. For custodial accounts,
    registrar, issuer and operator are also granted/revoked on chain (see `chain_changes`)."""
    return services.set_roles(
        session,
        settings,
        lambda: chain_for(settings),
        by=admin,
        account_id=account_id,
        names=body.roles,
    )

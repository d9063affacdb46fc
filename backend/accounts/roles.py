"""Role administration: list accounts, set an account's roles (admins only, at the API edge).

Roles are read from the database on every request (`api/deps.current_account`), never from
the access token, so a change applies to the account's next request; the `roles` claim in
tokens is informational.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable

from sqlalchemy import ColumnElement, String, cast
from sqlmodel import Session, col, select

from backend.accounts.chain_roles import mirrored, plan_chain_roles
from backend.accounts.errors import LastAdmin, UnknownAccount, UnknownRole
from backend.accounts.models import Account, Role
from backend.accounts.schemas import AccountAdminView, ChainRoleChange, RolesUpdated
from backend.audit import chain as audit
from backend.audit.chain import AuditAction
from backend.chain.contracts import Chain
from backend.core.pagination import keyset_page

log = logging.getLogger("gridledger.accounts")


def holds(role: Role) -> ColumnElement[bool]:
    """SQL: the account's role list contains `role` (JSON as text: PostgreSQL and SQLite)."""
    return cast(Account.roles, String).like(f'%"{role.value}"%')


def admin_view(account: Account) -> AccountAdminView:
    return AccountAdminView.model_validate(account, from_attributes=True)


def list_accounts(
    session: Session, *, cursor: str | None, limit: int, role: Role | None = None
) -> tuple[list[AccountAdminView], str | None]:
    query = select(Account) if role is None else select(Account).where(holds(role))
    rows, next_cursor = keyset_page(
        session, query, Account.id, cursor, limit, ascending=True, key_type=uuid.UUID
    )
    return [admin_view(a) for a in rows], next_cursor


def parse_roles(names: Iterable[str]) -> list[str]:
    try:
        return sorted({Role(name).value for name in names})
    except ValueError as exc:
        raise UnknownRole(str(exc), known_roles=[r.value for r in Role]) from exc


def set_roles(
    session: Session,
    chain: Callable[[], Chain],
    *,
    by: Account,
    account_id: uuid.UUID,
    names: Iterable[str],
) -> RolesUpdated:
    """Replace the account's roles; the answer lists the on-chain role changes that would
    match them, for the admin to propose on the timelock (`chain_roles`: the API sends none)."""
    roles = parse_roles(names)
    account = session.get(Account, account_id)
    if account is None:
        raise UnknownAccount(f"no account {account_id}")
    if Role.ADMIN.value in account.roles and Role.ADMIN.value not in roles:
        # Lock every active admin (in id order: no deadlock) so two admins cannot demote
        # each other at once.
        admins = session.exec(
            select(Account.id)
            .where(holds(Role.ADMIN), col(Account.active).is_(True))
            .order_by(col(Account.id))
            .with_for_update()
        ).all()
        if not set(admins) - {account.id}:
            raise LastAdmin(
                f"account {account_id} is the only active admin; make another admin first"
            )
    needed: list[ChainRoleChange] = []
    if mirrored(roles) or mirrored(account.roles):
        needed = plan_chain_roles(chain(), account.address, mirrored(roles))
    audit.record(
        session,
        AuditAction.ROLES_CHANGED,
        actor_id=by.id,
        subject=str(account.id),
        details={"before": account.roles, "after": roles, "chain_changes_needed": len(needed)},
    )
    account.roles = roles
    session.add(account)
    session.commit()
    session.refresh(account)
    log.info(
        "roles of %s set to %s by %s (%d on-chain changes to propose)",
        account.id,
        roles,
        by.id,
        len(needed),
    )
    return RolesUpdated(account=admin_view(account), chain_changes_needed=needed)

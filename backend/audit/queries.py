"""Reading the audit log for operators."""

from __future__ import annotations

import json
from datetime import UTC

from sqlmodel import Session, col, select

from backend.audit.chain import verify
from backend.audit.models import AuditEntry
from backend.audit.schemas import AuditEntryPublic, AuditVerification
from backend.core.pagination import keyset_page


def public(entry: AuditEntry) -> AuditEntryPublic:
    return AuditEntryPublic(
        id=entry.id or 0,
        at=entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=UTC),
        actor_id=entry.actor_id,
        action=entry.action,
        subject=entry.subject,
        details=json.loads(entry.details),
        prev_hash=entry.prev_hash,
        hash=entry.hash,
    )


def entries(
    session: Session, *, cursor: str | None, limit: int, action: str | None = None
) -> tuple[list[AuditEntryPublic], str | None]:
    """Newest first, optionally one action."""
    query = select(AuditEntry)
    if action:
        query = query.where(col(AuditEntry.action) == action)
    rows, next_cursor = keyset_page(session, query, AuditEntry.id, cursor, limit)
    return [public(row) for row in rows], next_cursor


def verification(session: Session) -> AuditVerification:
    result = verify(session)
    return AuditVerification(
        intact=result.intact,
        entries=result.entries,
        head_hash=result.head_hash,
        first_broken_id=result.first_broken_id,
        problem=result.problem,
    )

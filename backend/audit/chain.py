"""Append to and verify the hash-chained audit log.

`record()` adds an entry in the caller's transaction, so an action and its entry commit or
roll back together; appends are serialised (a PostgreSQL advisory lock; SQLite has one writer)
so every entry chains to the one committed before it. The table refuses UPDATE and DELETE
(a trigger, migration `0008_audit_log`); `verify()` detects a row changed or deleted anyway, by
someone who could turn the trigger off. Deleting the newest entries is only detectable against a
head hash kept elsewhere, so `verify` prints the head for operators to record.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC

from sqlalchemy import text
from sqlmodel import Session, col, select

from backend.audit.models import GENESIS_HASH, AuditEntry
from backend.core.utc import utc_now

# any constant shared by every writer: the key of the advisory lock that serialises appends
_APPEND_LOCK = 0x6772_6964_6175_6474  # "gridaudt"


class AuditAction:
    LOGIN = "auth.login"
    LOGIN_FAILED = "auth.login_failed"
    SIWE_LOGIN = "auth.siwe_login"
    API_KEY_CREATED = "auth.api_key_created"
    API_KEY_REVOKED = "auth.api_key_revoked"
    ROLES_CHANGED = "admin.roles_changed"
    CUSTODIAL_SIGNATURE = "custody.signed"
    METER_APPROVED = "meters.approved"
    METER_SUSPENDED = "meters.suspended"
    RESOURCE_MOVED = "resources.moved"


def _canonical(entry: AuditEntry) -> bytes:
    at = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=UTC)
    return json.dumps(
        {
            "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor_id": str(entry.actor_id) if entry.actor_id else None,
            "action": entry.action,
            "subject": entry.subject,
            "details": entry.details,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def entry_hash(entry: AuditEntry) -> str:
    return hashlib.sha256(entry.prev_hash.encode() + b"\0" + _canonical(entry)).hexdigest()


def record(
    session: Session,
    action: str,
    *,
    actor_id: uuid.UUID | None = None,
    subject: str = "",
    details: Mapping[str, object] | None = None,
) -> AuditEntry:
    """Append an entry in the session's transaction (the caller commits)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK})
    last = session.exec(select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(1)).first()
    entry = AuditEntry(
        at=utc_now(),
        actor_id=actor_id,
        action=action,
        subject=subject[:254],
        details=json.dumps(dict(details or {}), sort_keys=True, separators=(",", ":"), default=str),
        prev_hash=last.hash if last else GENESIS_HASH,
        hash="",
    )
    entry.hash = entry_hash(entry)
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class Verification:
    entries: int
    head_hash: str
    first_broken_id: int | None
    problem: str | None

    @property
    def intact(self) -> bool:
        return self.problem is None


def verify(session: Session, *, batch: int = 5_000) -> Verification:
    """Walk the chain from the first entry: every hash recomputes and every entry names the
    previous entry's hash."""
    previous, count, after = GENESIS_HASH, 0, 0
    while True:
        rows = session.exec(
            select(AuditEntry)
            .where(col(AuditEntry.id) > after)
            .order_by(col(AuditEntry.id))
            .limit(batch)
        ).all()
        for entry in rows:
            if entry.prev_hash != previous:
                return Verification(count, previous, entry.id, "an earlier entry was deleted")
            if entry_hash(entry) != entry.hash:
                return Verification(count, previous, entry.id, "the entry was changed")
            previous, count = entry.hash, count + 1
        if len(rows) < batch:
            return Verification(count, previous, None, None)
        after = rows[-1].id or 0

"""Operators' view of the VENs: list them with their last registration, contact and poll,
revoke one, and what the VTN learns in passing (contacts, TELEMETRY_STATUS reports)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from backend.core.db import table_of
from backend.core.utc import utc_now
from backend.openadr.errors import VenNotFound
from backend.openadr.models import Ven


def list_vens(session: Session, *, include_revoked: bool = False) -> list[Ven]:
    query = select(Ven).order_by(col(Ven.ven_name))
    if not include_revoked:
        query = query.where(col(Ven.active).is_(True))
    return list(session.exec(query).all())


def revoke_ven(session: Session, *, ven_id: str) -> Ven:
    """The VEN's certificate no longer admits it: inactive, registration dropped; its history
    stays. The VTN answers its next message with 452 (unknown venID)."""
    ven = session.get(Ven, ven_id)
    if ven is None or not ven.active:
        raise VenNotFound(f"no active VEN {ven_id!r}")
    ven.active = False
    ven.registration_id = None
    ven.revoked_at = utc_now()
    session.add(ven)
    session.flush()
    return ven


def record_contacts(
    session: Session, contacts: Mapping[str, tuple[datetime, datetime | None]]
) -> int:
    """Write a batch of last contacts (and last polls) noted by the gate. Flushed."""
    t = table_of(Ven)
    for ven_id, (contact, poll) in contacts.items():
        values: dict[str, Any] = {"last_contact_at": contact}
        if poll is not None:
            values["last_poll_at"] = poll
        session.connection().execute(update(t).where(t.c.ven_id == ven_id).values(**values))
    return len(contacts)


def record_status(
    session: Session, *, ven_id: str, resource_id: str | None, values: list[tuple[datetime, Any]]
) -> None:
    """A TELEMETRY_STATUS report: the VEN is online; its latest value per resource is its
    load control state (openleadr's VENs report a number: the level they run at)."""
    ven = session.get(Ven, ven_id)
    if ven is None or not values:
        return
    at, value = max(values, key=lambda pair: pair[0])
    status = dict(ven.status or {})
    status["online"] = True
    states = dict(status.get("load_control_state") or {})  # type: ignore[call-overload]
    states[resource_id or ""] = value
    status["load_control_state"] = states
    status["reported_at"] = at.isoformat()
    ven.status = status
    ven.status_at = utc_now()
    session.add(ven)
    session.flush()

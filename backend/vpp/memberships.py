"""Ending memberships in bulk: used by the VPP services and by the DER registry (a
decommissioned resource leaves its VPP), so it depends on the models only."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col

from backend.core.utc import utc_now
from backend.vpp.models import MembershipEnd, VppMembership


def end_memberships(
    session: Session,
    how: MembershipEnd,
    *,
    vpp_id: uuid.UUID | None = None,
    resource_id: uuid.UUID | None = None,
    at: datetime | None = None,
) -> int:
    """Stamp the open memberships of a VPP or of a resource as ended at `at` (default: wall
    time); how many were open."""
    query = update(VppMembership).where(col(VppMembership.left_at).is_(None))
    if vpp_id is not None:
        query = query.where(col(VppMembership.vpp_id) == vpp_id)
    if resource_id is not None:
        query = query.where(col(VppMembership.resource_id) == resource_id)
    result = session.execute(query.values(left_at=at or utc_now(), ended_by=how.value))
    return int(getattr(result, "rowcount", 0))

"""Live channels of `/v1/ws` driven by DER telemetry (WIA-ENE-014's WebSocket stream), in the
seed's envelope `{"channel", "timestamp", "payload"}` (backend/api/ws_hub.py):

- `vpp.<vppId>.status`: the VPP data model (`GET /v1/vpp/{id}`: `vppId`, `capacity`,
  `resources` with `current` and `soc`, `aggregatedOutput`, `status`, `lastUpdate`), after
  every telemetry batch that touched one of its members. Only the VPP's aggregator and the
  owners of its current members may subscribe (the socket authenticates, see routes/ws.py).
- `consumption.real-time`: `{"total", "unit": "W", "breakdown": {kind: W}}`, what the active
  resources draw now (their latest negative output), by resource kind.
- `generation.solar`: `{"total", "unit": "W", "breakdown": {gridArea: W}, "resources"}`, what
  the active PV systems feed now (their latest positive output), by grid area.

Power is integer W from the latest reported state of each resource (telemetry: it explains,
it settles nothing). Each outbox `der.telemetry` message (one per stored batch) costs one read
for all subscribed sockets, and only when one of these channels is subscribed.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from typing import Any

from sqlmodel import Session, col, select

from backend.resources.models import DerResource, ResourceKind, ResourceStatus
from backend.vpp.models import Vpp, VppMembership
from backend.vpp.services import vpp_view

CONSUMPTION = "consumption.real-time"
SOLAR = "generation.solar"
VPP_STATUS = re.compile(
    r"^vpp\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.status$"
)
CHANNEL = rf"{re.escape(CONSUMPTION)}|{re.escape(SOLAR)}|vpp\.[0-9a-f-]{{36}}\.status"

Json = dict[str, Any]


def vpp_of(channel: str) -> uuid.UUID | None:
    found = VPP_STATUS.match(channel)
    return uuid.UUID(found.group(1)) if found else None


def may_follow(session: Session, account_id: uuid.UUID | None, vpp_id: uuid.UUID) -> bool:
    """Whether `account_id` may watch the VPP: its aggregator or a current member's owner."""
    if account_id is None:
        return False
    vpp = session.get(Vpp, vpp_id)
    if vpp is None or vpp.dissolved_at is not None:
        return False
    if vpp.aggregator_id == account_id:
        return True
    owner = session.exec(
        select(DerResource.id)
        .join(VppMembership, col(VppMembership.resource_id) == col(DerResource.id))
        .where(
            VppMembership.vpp_id == vpp_id,
            col(VppMembership.left_at).is_(None),
            DerResource.owner_id == account_id,
        )
    ).first()
    return owner is not None


def _active_outputs(session: Session, *where: Any) -> list[tuple[str, str, int]]:
    rows = session.exec(
        select(DerResource.kind, DerResource.grid_area, DerResource.output_w).where(
            DerResource.status == ResourceStatus.ACTIVE.value,
            col(DerResource.output_w).is_not(None),
            *where,
        )
    ).all()
    return [(kind, area, int(output or 0)) for kind, area, output in rows]


def consumption(session: Session) -> Json:
    breakdown: dict[str, int] = defaultdict(int)
    for kind, _, output in _active_outputs(session, col(DerResource.output_w) < 0):
        breakdown[kind] += -output
    return {
        "total": sum(breakdown.values()),
        "unit": "W",
        "breakdown": dict(sorted(breakdown.items())),
    }


def solar(session: Session) -> Json:
    breakdown: dict[str, int] = defaultdict(int)
    rows = _active_outputs(
        session, DerResource.kind == ResourceKind.PV.value, col(DerResource.output_w) > 0
    )
    for _, area, output in rows:
        breakdown[area] += output
    return {
        "total": sum(breakdown.values()),
        "unit": "W",
        "breakdown": dict(sorted(breakdown.items())),
        "resources": len(rows),
    }


def telemetry_updates(session: Session, payload: Json, wanted: set[str]) -> list[tuple[str, Json]]:
    """(channel, payload) for a `der.telemetry` outbox message, among the `wanted` channels."""
    reported = [uuid.UUID(r) for r in payload.get("resources", [])]
    if not reported:
        return []
    updates: list[tuple[str, Json]] = []
    followed = {v for v in (vpp_of(c) for c in wanted) if v is not None}
    if followed:
        touched = session.exec(
            select(VppMembership.vpp_id)
            .where(
                col(VppMembership.vpp_id).in_(followed),
                col(VppMembership.resource_id).in_(reported),
                col(VppMembership.left_at).is_(None),
            )
            .distinct()
        ).all()
        for vpp_id in sorted(touched):
            vpp = session.get(Vpp, vpp_id)
            if vpp is not None and vpp.dissolved_at is None:
                updates.append(
                    (f"vpp.{vpp_id}.status", vpp_view(session, vpp).model_dump(mode="json"))
                )
    if CONSUMPTION in wanted:
        updates.append((CONSUMPTION, consumption(session)))
    if SOLAR in wanted:
        pv = session.exec(
            select(DerResource.id).where(
                col(DerResource.id).in_(reported), DerResource.kind == ResourceKind.PV.value
            )
        ).first()
        if pv is not None:
            updates.append((SOLAR, solar(session)))
    return updates

"""Freshness checks: is the stack doing its work, not just answering?

Each check compares a figure against its threshold in settings (GRIDLEDGER_HEALTH_*) and is
`degraded` beyond it, saying what is late and since when:
- settlement: the oldest period past its gate (end + settlement gate delay) with an open
  energy trade; late by `now - due`, in the settlement clock (chain time when simulated);
- issuance: the oldest device-hour with verified export still without its certificate once
  it should have one (hour end + gate + missing-data deadline);
- matcher, mqtt, beat: wall seconds since the component's last heartbeat;
- outbox: the oldest unpublished outbox row, when a Redis stream is fed (without Redis the
  API tails the table itself and nothing needs publishing);
- dispatch: VPP commands the dispatcher should have handled — the oldest still pending
  (not published) or still `sent` past its acknowledgement deadline (not yet marked late);
  the late and failed commands of the last hour are counted (devices' faults, shown, not
  degrading).
`now` is the settlement clock; heartbeats and the outbox are judged by the wall clock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from backend.core.config import Settings
from backend.health.heartbeats import WATCHED, heartbeats
from backend.meters.models import MeterReading
from backend.settlement.models import BatchStatus, IssuanceStatus, RecIssuance, SettlementBatch
from backend.vpp.models import CommandState, DispatchCommand
from indexer.models import Device, DeviceStatus, OutboxMessage, Trade, TradeStatus

HOUR = 3600
LOOKBACK_S = 7 * 86_400  # backend/settlement/issuance.py's look-back
DONE = (
    IssuanceStatus.ISSUED,
    IssuanceStatus.CLOSED,
    IssuanceStatus.SKIPPED,
    IssuanceStatus.REFUSED,
)
OK, DEGRADED = "ok", "degraded"


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Freshness:
    """One check: `figures` are numbers (also the Prometheus gauges); `late` and `since` say
    what is late and since when (operators only)."""

    ok: bool = True
    figures: dict[str, float | int | None] = field(default_factory=dict)
    late: str | None = None
    since: str | None = None

    def as_dict(self) -> dict[str, object]:
        reply: dict[str, object] = {"ok": self.ok, "status": OK if self.ok else DEGRADED}
        reply.update(self.figures)
        if self.late is not None:
            reply.update(late=self.late, since=self.since)
        return reply


def settlement(session: Session, settings: Settings, now: int) -> Freshness:
    gate = settings.settlement_gate_delay_s
    oldest, trades = session.exec(
        select(func.min(Trade.delivery_end), func.count()).where(
            Trade.product == "energy",
            Trade.status == TradeStatus.OPEN,
            col(Trade.delivery_end) <= now - gate,
        )
    ).one()
    if oldest is None:
        return Freshness(figures={"oldest_unsettled_period_end": None, "late_s": 0})
    late_s = now - (int(oldest) + gate)
    check = Freshness(
        ok=late_s <= settings.health_settlement_late_s,
        figures={"oldest_unsettled_period_end": int(oldest), "late_s": late_s, "trades": trades},
    )
    if not check.ok:
        check.late = f"period ending {iso(int(oldest))} not settled ({trades} open trade(s))"
        check.since = iso(int(oldest) + gate)
    return check


def issuance(session: Session, settings: Settings, now: int) -> Freshness:
    """The oldest device-hour that should have its certificate by now (verified export of an
    approved device, ended more than gate + missing-data deadline ago, within the issuer's
    7-day look-back) but is not issued, closed or skipped: a dead worker or beat, or a stuck
    issueBatch. Late by `now - (hour end + gate + deadline)`."""
    gate, deadline = settings.settlement_gate_delay_s, settings.settlement_missing_data_deadline_s
    due_by = now - gate - deadline  # hours ending by then must have their certificate
    hour = col(MeterReading.interval_start) - col(MeterReading.interval_start) % HOUR
    done = select(RecIssuance.hour_start).where(
        RecIssuance.device_id == Device.device_id,
        RecIssuance.hour_start == hour,
        col(RecIssuance.status).in_(DONE),
    )
    oldest, readings = session.exec(
        select(func.min(hour), func.count())
        .join(Device, func.lower(Device.meter_id) == MeterReading.meter_id)
        .where(
            Device.status == DeviceStatus.APPROVED,
            col(MeterReading.verified).is_(True),
            col(MeterReading.export_wh) > 0,
            hour >= Device.commissioned_at,
            col(MeterReading.interval_start) >= now - LOOKBACK_S,
            col(MeterReading.interval_start) < due_by,  # (bounds the scan on the index)
            hour <= due_by - HOUR,
            ~done.exists(),
        )
    ).one()
    if oldest is None:
        return Freshness(figures={"oldest_waiting_hour": None, "late_s": 0})
    due = int(oldest) + HOUR + gate + deadline
    late_s = now - due
    check = Freshness(
        ok=late_s <= settings.health_issuance_late_s,
        figures={"oldest_waiting_hour": int(oldest), "late_s": late_s, "readings": readings},
    )
    if not check.ok:
        check.late = f"certificate for the hour from {iso(int(oldest))} not issued"
        check.since = iso(due)
    return check


def heartbeat_checks(session: Session, settings: Settings, wall_now: float) -> dict[str, Freshness]:
    seen = heartbeats(session)
    checks: dict[str, Freshness] = {}
    for component in WATCHED:
        row = seen.get(component)
        if row is None:
            checks[component] = Freshness(
                ok=False, figures={"age_s": None}, late=f"{component}: no heartbeat yet"
            )
            continue
        beat_at = row.beat_at if row.beat_at.tzinfo else row.beat_at.replace(tzinfo=UTC)
        age_s = round(max(wall_now - beat_at.timestamp(), 0), 1)
        check = Freshness(
            ok=age_s <= settings.health_heartbeat_max_age_s,
            figures={"age_s": age_s},
        )
        if not check.ok:
            check.late = f"{component} silent for {age_s:g} s (last pid {row.pid} on {row.host})"
            check.since = iso(beat_at.timestamp())
        checks[component] = check
    return checks


def outbox(session: Session, settings: Settings, wall_now: float) -> Freshness:
    oldest, backlog = session.exec(
        select(func.min(OutboxMessage.created_at), func.count()).where(
            col(OutboxMessage.published_at).is_(None)
        )
    ).one()
    unresolved = session.exec(
        select(func.count())
        .select_from(SettlementBatch)
        .where(SettlementBatch.status == BatchStatus.SIGNED)
    ).one()
    figures: dict[str, float | int | None] = {
        "backlog": backlog,
        "unresolved_transactions": unresolved,
    }
    if not settings.redis_url or oldest is None:  # no stream to feed, or nothing waiting
        return Freshness(figures={**figures, "oldest_age_s": 0})
    created = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
    age_s = round(max(wall_now - created.timestamp(), 0), 1)
    check = Freshness(
        ok=age_s <= settings.health_outbox_late_s, figures={**figures, "oldest_age_s": age_s}
    )
    if not check.ok:
        check.late = f"{backlog} outbox message(s) not published"
        check.since = iso(created.timestamp())
    return check


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def dispatch(session: Session, settings: Settings, wall_now: float) -> Freshness:
    wall = datetime.fromtimestamp(wall_now, UTC)
    pending, oldest_pending = session.exec(
        select(func.count(), func.min(DispatchCommand.created_at)).where(
            DispatchCommand.state == CommandState.PENDING.value
        )
    ).one()
    overdue, oldest_deadline = session.exec(
        select(func.count(), func.min(DispatchCommand.ack_by)).where(
            DispatchCommand.state == CommandState.SENT.value, col(DispatchCommand.ack_by) < wall
        )
    ).one()
    recent = session.exec(
        select(DispatchCommand.state, func.count())
        .where(
            col(DispatchCommand.state).in_([CommandState.LATE.value, CommandState.FAILED.value]),
            col(DispatchCommand.created_at) >= datetime.fromtimestamp(wall_now - HOUR, UTC),
        )
        .group_by(col(DispatchCommand.state))
    ).all()
    counts = dict(recent)
    stalled = [_aware(t) for t in (oldest_pending, oldest_deadline) if t is not None]
    since = min(stalled) if stalled else None
    age_s = round(max(wall_now - since.timestamp(), 0), 1) if since else 0
    check = Freshness(
        ok=age_s <= settings.health_heartbeat_max_age_s,
        figures={
            "pending": pending,
            "overdue": overdue,
            "late_last_hour": counts.get(CommandState.LATE.value, 0),
            "failed_last_hour": counts.get(CommandState.FAILED.value, 0),
            "stalled_s": age_s,
        },
    )
    if not check.ok and since is not None:
        check.late = f"{pending} command(s) not published, {overdue} not marked late"
        check.since = iso(since.timestamp())
    return check


def freshness(
    session: Session, settings: Settings, *, now: int, wall_now: float | None = None
) -> dict[str, Freshness]:
    """Every freshness check, by name; `now` in the settlement clock."""
    wall_now = time.time() if wall_now is None else wall_now
    return {
        "settlement": settlement(session, settings, now),
        "issuance": issuance(session, settings, now),
        **heartbeat_checks(session, settings, wall_now),
        "outbox": outbox(session, settings, wall_now),
        "dispatch": dispatch(session, settings, wall_now),
    }


def freshness_checks(
    session: Session, settings: Settings, *, now: int, wall_now: float | None = None
) -> dict[str, dict[str, object]]:
    """`freshness` as the JSON /health shows operators."""
    return {
        name: check.as_dict()
        for name, check in freshness(session, settings, now=now, wall_now=wall_now).items()
    }

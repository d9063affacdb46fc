"""Downlink: schedules, setpoints and configuration to a VPP's devices, and their
acknowledgements (the `dispatch_commands` table; the `dispatcher` process publishes them,
backend/vpp/dispatcher.py).

Topics are WIA-ENE-014's, per resource (backend/resources/thing_description.py):
`{root}/{gridArea}/{deviceType}/{resourceId}/command` for schedules and setpoints and
`…/config` for configuration, published at QoS 1. Every payload carries its `commandId`:

    schedule  {"commandId", "type": "schedule", "timestamp", "scheduleId", "start",
               "slotSeconds": 900, "setpointsW": [96 integers, W, + feeds the grid]}
    setpoint  {"commandId", "type": "setpoint", "timestamp", "powerW", "until"}
    config    {"commandId", "type": "config", "timestamp", "maxChargeW", "maxDischargeW",
               "reportIntervalS"}

The seed names no acknowledgement, so the device acknowledges on its own `…/status` topic (the
Thing Description's `statusChanged` event; the one topic its broker login may write besides
its telemetry) with a status message that names the command:

    {"timestamp", "value": "ack", "commandId", "result": "accepted" | "rejected", "detail"?}

A command is `sent` once the broker took it (PUBACK), `acked` when the device accepted it
within `vpp_ack_timeout_s` of that, `late` when no acknowledgement came in time (a later one is
recorded in `acked_at`, the state stays `late`), `failed` when the device rejected it or the
broker refused it `vpp_publish_attempts` times. Only the device whose topic the command went to
can acknowledge it: an acknowledgement on another resource's topic is ignored.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

import orjson
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from backend.accounts.models import Account
from backend.core.config import Settings
from backend.core.errors import InvalidInput
from backend.core.utc import utc_now
from backend.resources.models import DerResource, ResourceKind
from backend.resources.thing_description import topic
from backend.vpp.errors import MalformedAck, NotAMember, ScheduleNotFound, VppAccessDenied
from backend.vpp.models import (
    CommandKind,
    CommandState,
    DispatchCommand,
    Vpp,
    VppSchedule,
)
from backend.vpp.schemas import CommandPublic, DispatchStatusPublic
from backend.vpp.services import get_vpp, members, run_by

ACK = "ack"
ACCEPTED, REJECTED = "accepted", "rejected"
AckResult = Literal["accepted", "rejected"]
REPORT_INTERVAL_S = 60  # what the config command asks devices to report at


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _command(
    settings: Settings,
    vpp: Vpp,
    resource: DerResource,
    kind: CommandKind,
    body: dict[str, Any],
    schedule_id: uuid.UUID | None = None,
) -> DispatchCommand:
    command_id, created = uuid.uuid4(), utc_now()
    metric = "config" if kind == CommandKind.CONFIG else "command"
    return DispatchCommand(
        id=command_id,
        vpp_id=vpp.id,
        schedule_id=schedule_id,
        resource_id=resource.id,
        kind=kind.value,
        topic=topic(settings, resource, metric),
        payload={
            "commandId": str(command_id),
            "type": kind.value,
            "timestamp": iso(created),
            **body,
        },
        created_at=created,
    )


def config_body(resource: DerResource) -> dict[str, Any]:
    return {
        "maxChargeW": resource.max_charge_w,
        "maxDischargeW": resource.max_discharge_w,
        "reportIntervalS": REPORT_INTERVAL_S,
    }


def _config_current(session: Session, resource: DerResource) -> bool:
    """Whether the device already accepted a configuration with the resource's limits."""
    last = session.exec(
        select(DispatchCommand)
        .where(
            DispatchCommand.resource_id == resource.id,
            DispatchCommand.kind == CommandKind.CONFIG.value,
            col(DispatchCommand.state).in_(
                [CommandState.PENDING.value, CommandState.SENT.value, CommandState.ACKED.value]
            ),
        )
        .order_by(col(DispatchCommand.created_at).desc())
    ).first()
    if last is None:
        return False
    wanted = config_body(resource)
    return all(last.payload.get(k) == v for k, v in wanted.items())


def queue_schedule(
    session: Session, settings: Settings, schedule: VppSchedule
) -> list[DispatchCommand]:
    """Queue the schedule's setpoints for each dispatchable member that is still in the VPP
    (a configuration first when its limits were never accepted). Idempotent: a resource that
    already has this schedule's command gets no second one. The caller commits."""
    vpp = session.get(Vpp, schedule.vpp_id)
    if vpp is None or schedule.result.get("status") != "completed":
        return []
    current = {r.id: r for r, _ in members(session, vpp)}
    done = set(
        session.exec(
            select(DispatchCommand.resource_id).where(
                DispatchCommand.schedule_id == schedule.id,
                DispatchCommand.kind == CommandKind.SCHEDULE.value,
            )
        ).all()
    )
    queued: list[DispatchCommand] = []
    for allocation in schedule.result.get("allocation", []):
        resource = current.get(uuid.UUID(allocation["resourceId"]))
        if resource is None or resource.kind == ResourceKind.PV or resource.id in done:
            continue
        if not _config_current(session, resource):
            queued.append(
                _command(settings, vpp, resource, CommandKind.CONFIG, config_body(resource))
            )
        body = {
            "scheduleId": str(schedule.id),
            "start": iso(datetime.fromtimestamp(schedule.start, UTC)),
            "slotSeconds": schedule.slot_seconds,
            "setpointsW": list(allocation["setpointsW"]),
        }
        queued.append(_command(settings, vpp, resource, CommandKind.SCHEDULE, body, schedule.id))
    session.add_all(queued)
    session.flush()
    return queued


def dispatch_schedule(
    session: Session,
    settings: Settings,
    account: Account,
    vpp_id: uuid.UUID,
    schedule_id: uuid.UUID,
) -> list[DispatchCommand]:
    """The aggregator sends a stored schedule of its VPP to the devices."""
    vpp = run_by(session, account, vpp_id)
    schedule = session.get(VppSchedule, schedule_id)
    if schedule is None or schedule.vpp_id != vpp.id:
        raise ScheduleNotFound(f"no schedule {schedule_id} of VPP {vpp_id}")
    if schedule.result.get("status") != "completed":
        raise InvalidInput(f"schedule {schedule_id} is infeasible: nothing to dispatch")
    return queue_schedule(session, settings, schedule)


def queue_setpoint(
    session: Session,
    settings: Settings,
    account: Account,
    vpp_id: uuid.UUID,
    resource_id: uuid.UUID,
    *,
    power_w: int,
    until: datetime,
) -> DispatchCommand:
    """One setpoint for a member until `until` (within the resource's limits)."""
    vpp = run_by(session, account, vpp_id)
    resource = {r.id: r for r, _ in members(session, vpp)}.get(resource_id)
    if resource is None:
        raise NotAMember(f"resource {resource_id} is not a member of VPP {vpp_id}")
    if not -resource.max_charge_w <= power_w <= resource.max_discharge_w:
        raise InvalidInput(
            f"setpoint {power_w} W outside -{resource.max_charge_w}..{resource.max_discharge_w} W",
            min_w=-resource.max_charge_w,
            max_w=resource.max_discharge_w,
        )
    if until.tzinfo is None:
        raise InvalidInput("until needs a time zone (UTC)")
    command = _command(
        settings, vpp, resource, CommandKind.SETPOINT, {"powerW": power_w, "until": iso(until)}
    )
    session.add(command)
    session.flush()
    return command


# ------------------------------------------------------------------ the dispatcher's side


def pending(session: Session, limit: int = 500) -> Sequence[DispatchCommand]:
    return session.exec(
        select(DispatchCommand)
        .where(DispatchCommand.state == CommandState.PENDING.value)
        .order_by(col(DispatchCommand.created_at), col(DispatchCommand.id))
        .limit(limit)
    ).all()


def encode(command: DispatchCommand) -> bytes:
    return orjson.dumps(command.payload)


def mark_sent(command: DispatchCommand, settings: Settings, now: datetime) -> None:
    command.attempts += 1
    command.state = CommandState.SENT.value
    command.sent_at = now
    command.ack_by = now + timedelta(seconds=settings.vpp_ack_timeout_s)


def mark_unpublished(command: DispatchCommand, settings: Settings, reason: str) -> None:
    """The broker did not take it: pending again, failed after the last attempt."""
    command.attempts += 1
    if command.attempts >= settings.vpp_publish_attempts:
        command.state = CommandState.FAILED.value
        command.detail = f"not published after {command.attempts} attempts: {reason}"[:200]


def mark_late(session: Session, now: datetime) -> int:
    """Sent commands past their acknowledgement deadline become late; how many did."""
    result = session.execute(
        update(DispatchCommand)
        .where(
            col(DispatchCommand.state) == CommandState.SENT.value,
            col(DispatchCommand.ack_by) < now,
        )
        .values(state=CommandState.LATE.value)
    )
    return int(getattr(result, "rowcount", 0))


@dataclass(frozen=True)
class Ack:
    resource_id: uuid.UUID
    command_id: uuid.UUID
    result: str
    detail: str | None
    received_at: datetime | None = None  # when it reached us (None: when it is applied)
    topic: str = ""  # the message as received (for a dead letter)
    payload: bytes = b""


def ack_from_message(topic_name: str, payload: bytes | bytearray, root: str) -> Ack | None:
    """The acknowledgement a status message carries; None for a plain status (the ingestion
    subscriber judges those); MalformedAck for an acknowledgement without a valid command id."""
    parts = topic_name.split("/")
    if len(parts) != 5 or parts[0] != root or parts[4] != "status":
        return None
    try:
        body = orjson.loads(payload)
        resource_id = uuid.UUID(parts[3])
    except (orjson.JSONDecodeError, ValueError):
        return None
    if not isinstance(body, dict) or body.get("value", body.get("status")) != ACK:
        return None
    try:
        command_id = uuid.UUID(str(body.get("commandId")))
    except ValueError:
        raise MalformedAck(f"commandId {str(body.get('commandId'))[:80]!r} is not a UUID") from None
    result = body.get("result", ACCEPTED)
    detail = body.get("detail")
    return Ack(
        resource_id,
        command_id,
        result if result in (ACCEPTED, REJECTED) else REJECTED,
        str(detail)[:200] if detail is not None else None,
        topic=topic_name,
        payload=bytes(payload),
    )


def record_ack(session: Session, ack: Ack, now: datetime) -> DispatchCommand | None:
    """Apply an acknowledgement (a repeated one changes nothing); None when it names no command
    sent to that resource."""
    command = session.get(DispatchCommand, ack.command_id)
    if command is None or command.resource_id != ack.resource_id:
        return None
    if command.acked_at is not None:  # redelivered (QoS 1) or sent twice
        return command
    now = ack.received_at or now
    command.acked_at = now
    command.ack_result = ack.result
    command.detail = ack.detail
    if ack.result == REJECTED:
        command.state = CommandState.FAILED.value
    elif command.state in (CommandState.SENT, CommandState.PENDING):
        on_time = command.ack_by is None or now <= _aware(command.ack_by)
        command.state = (CommandState.ACKED if on_time else CommandState.LATE).value
    session.add(command)
    return command


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ------------------------------------------------------------------ reading


def command_view(command: DispatchCommand) -> CommandPublic:
    return CommandPublic(
        commandId=command.id,
        resourceId=command.resource_id,
        scheduleId=command.schedule_id,
        type=CommandKind(command.kind).value,
        topic=command.topic,
        state=CommandState(command.state).value,
        attempts=command.attempts,
        createdAt=command.created_at,
        sentAt=command.sent_at,
        ackBy=command.ack_by,
        ackedAt=command.acked_at,
        ackResult=cast(AckResult | None, command.ack_result),
        detail=command.detail,
        payload=command.payload,
    )


def dispatch_status(
    session: Session,
    account: Account,
    vpp_id: uuid.UUID,
    *,
    states: Sequence[CommandState] = (),
    schedule_id: uuid.UUID | None = None,
    limit: int = 200,
) -> DispatchStatusPublic:
    """The VPP's commands, newest first, with counts by state: all of them for its aggregator,
    those to their own resources for a member's owner (VppAccessDenied for anyone else)."""
    vpp = get_vpp(session, vpp_id)
    where = [col(DispatchCommand.vpp_id) == vpp.id]
    if vpp.aggregator_id != account.id:
        own = select(DerResource.id).where(DerResource.owner_id == account.id)
        if not any(r.owner_id == account.id for r, _ in members(session, vpp)):
            raise VppAccessDenied(
                "only the VPP's aggregator and its members' owners read its dispatch",
                vpp_id=str(vpp_id),
            )
        where.append(col(DispatchCommand.resource_id).in_(own))
    counts = {state.value: 0 for state in CommandState}
    for state, count in session.exec(
        select(DispatchCommand.state, func.count())
        .where(*where)
        .group_by(col(DispatchCommand.state))
    ).all():
        counts[state] = int(count)
    if states:
        where.append(col(DispatchCommand.state).in_([s.value for s in states]))
    if schedule_id is not None:
        where.append(col(DispatchCommand.schedule_id) == schedule_id)
    rows = session.exec(
        select(DispatchCommand)
        .where(*where)
        .order_by(col(DispatchCommand.created_at).desc(), col(DispatchCommand.id))
        .limit(limit)
    ).all()
    return DispatchStatusPublic(
        vppId=vpp.id, counts=counts, commands=[command_view(c) for c in rows]
    )

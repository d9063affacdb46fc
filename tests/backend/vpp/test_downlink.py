"""Downlink bookkeeping: commands queued per schedule (idempotently, a configuration first),
acknowledgements matched to their device, deadlines turning sent commands late."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from backend.core.config import Settings
from backend.core.errors import InvalidInput
from backend.vpp import downlink
from backend.vpp.errors import MalformedAck, NotAMember, VppAccessDenied
from backend.vpp.models import CommandState, DispatchCommand
from tests.fixtures.resources import add_aggregator, add_pv
from tests.fixtures.vpp import stored_schedule, vpp_of_batteries

ROOT = "energy-cloud"
SETTINGS = Settings(_env_file=None, vpp_ack_timeout_s=30)
T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)


@pytest.fixture
def world(metered):
    session, owner, other, *_ = metered
    aggregator = add_aggregator(session)
    vpp, batteries = vpp_of_batteries(session, owner, aggregator)
    schedule = stored_schedule(
        session, vpp, [(b, [1_000 * (i + 1)] * 96) for i, b in enumerate(batteries)], 1_796_126_400
    )
    return session, owner, other, aggregator, vpp, batteries, schedule


def test_a_schedule_queues_config_then_setpoints_once(world):
    session, _owner, _other, aggregator, vpp, batteries, schedule = world
    commands = downlink.dispatch_schedule(session, SETTINGS, aggregator, vpp.id, schedule.id)
    assert [(c.resource_id, c.kind) for c in commands] == [
        (batteries[0].id, "config"),
        (batteries[0].id, "schedule"),
        (batteries[1].id, "config"),
        (batteries[1].id, "schedule"),
    ]
    config, plan = commands[0], commands[1]
    assert config.topic == f"{ROOT}/KR-SE-001/battery/{batteries[0].id}/config"
    assert plan.topic == f"{ROOT}/KR-SE-001/battery/{batteries[0].id}/command"
    assert config.payload | {"timestamp": None} == {
        "commandId": str(config.id),
        "type": "config",
        "timestamp": None,
        "maxChargeW": 5_000,
        "maxDischargeW": 5_000,
        "reportIntervalS": 60,
    }
    assert plan.payload["setpointsW"] == [1_000] * 96
    assert plan.payload["start"] == "2026-12-01T12:00:00Z" and plan.payload["slotSeconds"] == 900
    assert all(c.state == CommandState.PENDING for c in commands)
    # again: nothing new; a second schedule needs no new configuration (one is pending)
    assert downlink.queue_schedule(session, SETTINGS, schedule) == []
    later = stored_schedule(session, vpp, [(batteries[0], [0] * 96)], 1_796_212_800)
    assert [c.kind for c in downlink.queue_schedule(session, SETTINGS, later)] == ["schedule"]


def test_only_the_aggregator_dispatches_and_setpoints_respect_limits(world):
    session, owner, _other, aggregator, vpp, batteries, schedule = world
    with pytest.raises(VppAccessDenied):
        downlink.dispatch_schedule(session, SETTINGS, owner, vpp.id, schedule.id)
    until = T0 + timedelta(hours=1)
    with pytest.raises(InvalidInput, match=r"outside -5000\.\.5000 W"):
        downlink.queue_setpoint(
            session, SETTINGS, aggregator, vpp.id, batteries[0].id, power_w=6_000, until=until
        )
    outsider = add_pv(session, owner)
    with pytest.raises(NotAMember):
        downlink.queue_setpoint(
            session, SETTINGS, aggregator, vpp.id, outsider.id, power_w=0, until=until
        )
    command = downlink.queue_setpoint(
        session, SETTINGS, aggregator, vpp.id, batteries[0].id, power_w=-2_500, until=until
    )
    assert command.payload["powerW"] == -2_500
    assert command.payload["until"] == "2026-12-01T13:00:00Z"


def ack(resource_id, command_id, **extra) -> bytes:
    return orjson.dumps({"value": "ack", "commandId": str(command_id), **extra})


def test_acknowledgements_late_and_rejected(world):
    session, _owner, _other, aggregator, vpp, _batteries, schedule = world
    on_time, late, rejected, silent = downlink.dispatch_schedule(
        session, SETTINGS, aggregator, vpp.id, schedule.id
    )
    for command in (on_time, late, rejected, silent):
        downlink.mark_sent(command, SETTINGS, T0)
    assert on_time.ack_by == T0 + timedelta(seconds=30) and on_time.attempts == 1

    def topic_of(command: DispatchCommand) -> str:
        return command.topic.rsplit("/", 1)[0] + "/status"

    def apply(command, at, **extra):
        parsed = downlink.ack_from_message(
            topic_of(command), ack(command.resource_id, command.id, **extra), ROOT
        )
        return downlink.record_ack(session, parsed, at)

    assert apply(on_time, T0 + timedelta(seconds=29)).state == CommandState.ACKED
    # a device cannot acknowledge another device's command
    forged = downlink.ack_from_message(
        topic_of(on_time), ack(on_time.resource_id, rejected.id), ROOT
    )
    assert forged.resource_id != rejected.resource_id
    assert downlink.record_ack(session, forged, T0) is None
    again = downlink.ack_from_message(topic_of(on_time), ack(on_time.resource_id, on_time.id), ROOT)
    assert downlink.record_ack(session, again, T0 + timedelta(hours=1)).acked_at == T0 + timedelta(
        seconds=29
    )  # a redelivered acknowledgement changes nothing
    rejected_ack = apply(rejected, T0 + timedelta(seconds=1), result="rejected", detail="busy")
    assert (rejected_ack.state, rejected_ack.detail) == (CommandState.FAILED, "busy")
    session.flush()
    assert downlink.mark_late(session, T0 + timedelta(seconds=31)) == 2  # late and silent
    session.refresh(late)
    acked_late = apply(late, T0 + timedelta(seconds=40))
    assert (acked_late.state, acked_late.acked_at) == (
        CommandState.LATE,
        T0 + timedelta(seconds=40),
    )
    session.refresh(silent)
    assert (silent.state, silent.acked_at) == (CommandState.LATE, None)
    status = downlink.dispatch_status(session, aggregator, vpp.id)
    assert status.counts == {"pending": 0, "sent": 0, "acked": 1, "late": 2, "failed": 1}


def test_plain_status_messages_and_garbage_are_not_acknowledgements():
    rid = uuid.uuid4()
    topic = f"{ROOT}/KR-SE-001/battery/{rid}/status"
    assert downlink.ack_from_message(topic, b'{"value": "online"}', ROOT) is None
    assert downlink.ack_from_message(topic, b"not json", ROOT) is None
    with pytest.raises(MalformedAck, match="'x' is not a UUID"):
        downlink.ack_from_message(topic, b'{"value": "ack", "commandId": "x"}', ROOT)
    assert downlink.ack_from_message(f"{ROOT}/a/b/{rid}/output", ack(rid, rid), ROOT) is None
    parsed = downlink.ack_from_message(topic, ack(rid, rid, result="maybe"), ROOT)
    assert (parsed.resource_id, parsed.command_id, parsed.result) == (rid, rid, "rejected")


def test_unpublished_commands_fail_after_the_last_attempt(world):
    session, _owner, _other, aggregator, vpp, _batteries, schedule = world
    command = downlink.dispatch_schedule(session, SETTINGS, aggregator, vpp.id, schedule.id)[0]
    settings = Settings(_env_file=None, vpp_publish_attempts=2)
    downlink.mark_unpublished(command, settings, "not connected")
    assert (command.state, command.attempts) == (CommandState.PENDING, 1)
    downlink.mark_unpublished(command, settings, "not connected")
    assert command.state == CommandState.FAILED
    assert command.detail == "not published after 2 attempts: not connected"


def test_owners_see_their_own_commands_and_outsiders_none(world):
    session, owner, other, aggregator, vpp, batteries, schedule = world
    downlink.dispatch_schedule(session, SETTINGS, aggregator, vpp.id, schedule.id)
    assert len(downlink.dispatch_status(session, aggregator, vpp.id).commands) == 4
    mine = downlink.dispatch_status(session, owner, vpp.id, states=[CommandState.PENDING])
    assert {c.resourceId for c in mine.commands} == {b.id for b in batteries}
    with pytest.raises(VppAccessDenied):
        downlink.dispatch_status(session, other, vpp.id)

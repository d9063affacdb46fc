"""The downlink on the real Mosquitto: the dispatcher publishes a schedule to simulated
devices, which acknowledge (or not) and report; the ingestion subscriber stores their
telemetry, and adherence shows who followed."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select

from backend.accounts.models import Account
from backend.core.config import Settings
from backend.core.db import make_engine
from backend.deadletters.models import DeadLetter
from backend.health.freshness import freshness_checks
from backend.vpp import adherence, downlink
from backend.vpp.dispatcher import Dispatcher
from backend.vpp.models import CommandState, DispatchCommand, VppSchedule
from backend.vpp.simulated_device import SimulatedDevice
from tests.fixtures.anvil import chain_clock_ahead
from tests.fixtures.meters import seed_meters
from tests.fixtures.mqtt import forget_session, run_subscriber, wait_until
from tests.fixtures.resources import add_aggregator
from tests.fixtures.services import require_service
from tests.fixtures.vpp import SLOT, stored_schedule, vpp_of_batteries

pytestmark = pytest.mark.mqtt


def states(engine) -> dict[tuple[uuid.UUID, str], DispatchCommand]:
    with Session(engine) as session:
        rows = session.exec(select(DispatchCommand)).all()
        return {(c.resource_id, c.kind): c for c in rows}


def test_commands_are_acknowledged_or_late_and_adherence_shows_who_followed(fresh_pg_url):
    require_service("Mosquitto", "mqtt://127.0.0.1:1883", "GRIDLEDGER_MQTT_HOST")
    root = f"energy-cloud-i17-dispatch-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        _env_file=None,
        database_url=fresh_pg_url,
        mqtt_topic_root=root,
        vpp_ack_timeout_s=2,
        vpp_dispatch_poll_s=0.1,
        vpp_adherence_tolerance=0.1,
        heartbeat_interval_s=0.1,
    )
    engine = make_engine(fresh_pg_url)
    start = (int(time.time()) // SLOT - 3) * SLOT  # slots 0..2 are over, slot 3 is running
    with Session(engine) as session:
        owner, *_ = seed_meters(session)
        aggregator = add_aggregator(session)
        vpp, (follower, stray, silent) = vpp_of_batteries(session, owner, aggregator, count=3)
        schedule = stored_schedule(
            session, vpp, [(b, [2_000] * 96) for b in (follower, stray, silent)], start
        )
        session.commit()
        devices = [
            SimulatedDevice.for_resource(settings, follower),
            SimulatedDevice.for_resource(settings, stray, follow_probability=0.0),
            SimulatedDevice.for_resource(settings, silent, ack_probability=0.0),
        ]
        ids = [follower.id, stray.id, silent.id]
        schedule_id, vpp_id, aggregator_id = schedule.id, vpp.id, aggregator.id
    ingest_id = f"gl-i17-ingest-{uuid.uuid4().hex[:8]}"
    dispatcher_id = f"gl-i17-dispatcher-{uuid.uuid4().hex[:8]}"
    ingest = run_subscriber(settings, ingest_id)
    dispatcher = Dispatcher(settings=settings, client_id=dispatcher_id)
    thread = threading.Thread(target=dispatcher.run, daemon=True)
    try:
        for device in devices:
            device.start()
        thread.start()
        assert dispatcher.subscribed.wait(10), "the dispatcher's subscription was not acknowledged"
        with Session(engine) as session:
            queued = downlink.queue_schedule(
                session, settings, session.get(VppSchedule, schedule_id)
            )
            session.commit()
        assert len(queued) == 6  # a configuration and the schedule per battery
        assert all(device.wait_for_commands(2) for device in devices), "commands not delivered"
        assert devices[0].received[0]["type"] == "config"
        assert devices[0].received[1]["setpointsW"] == [2_000] * 96

        def settled() -> bool:
            found = states(engine)
            return all(c.state in ("acked", "late") for c in found.values())

        assert wait_until(settled, 20), {k: v.state for k, v in states(engine).items()}
        found = states(engine)
        for resource_id in ids[:2]:
            for kind in ("config", "schedule"):
                command = found[(resource_id, kind)]
                assert command.state == CommandState.ACKED and command.ack_result == "accepted"
                assert command.sent_at <= command.acked_at <= command.ack_by
        for kind in ("config", "schedule"):
            assert found[(ids[2], kind)].state == CommandState.LATE
            assert found[(ids[2], kind)].acked_at is None

        # a device acknowledging what was never sent to it, and garbage: dead letters
        status_topic = devices[0].topic_prefix + "/status"
        for body in (
            {"value": "ack", "commandId": str(found[(ids[2], "schedule")].id)},
            {"value": "ack", "commandId": "cmd-1"},
        ):
            devices[0].client.publish(status_topic, json.dumps(body), qos=1).wait_for_publish(10)
        assert wait_until(lambda: dispatcher.totals["dead_letters"] == 2, 10)

        # the devices report twice in each finished slot; the stray one ignores its schedule
        for device in devices:
            for slot in range(3):
                for offset in (100, 600):
                    device.report(start + slot * SLOT + offset)
        assert wait_until(lambda: ingest.subscriber.totals.get("telemetry", 0) >= 36, 20)
        with Session(engine) as session:
            account = session.get(Account, aggregator_id)
            report = adherence.adherence(
                session, settings, account, vpp_id, schedule_id, now=datetime.now(UTC)
            )
            health = freshness_checks(session, settings, now=int(time.time()))
    finally:
        dispatcher.stopped.set()
        thread.join(10)
        ingest.stop()
        for device in devices:
            device.stop()
        forget_session(ingest_id)
        forget_session(dispatcher_id)
    assert report.endedSlots == 3 and report.tolerance == 0.1
    by_id = {r.resourceId: r for r in report.resources}
    followed = by_id[ids[0]]
    assert followed.toleranceWh == 125  # 10 % of 5 kW over a quarter hour
    assert [(s.plannedWh, s.actualWh, s.deviationWh, s.followed) for s in followed.slots] == [
        (500, 500, 0, True)
    ] * 3
    strayed = by_id[ids[1]]
    assert [(s.actualWh, s.deviationWh, s.followed) for s in strayed.slots] == [
        (0, -500, False)
    ] * 3
    assert (strayed.followedSlots, strayed.measuredSlots, strayed.absDeviationWh) == (0, 3, 1_500)
    assert health["dispatch"]["ok"] and health["dispatch"]["late_last_hour"] == 2
    assert health["dispatcher"]["ok"]  # its heartbeat
    with Session(engine) as session:
        letters = session.exec(select(DeadLetter).where(DeadLetter.source == "dispatcher")).all()
    assert sorted(d.reason for d in letters) == sorted(
        [
            f"acknowledges {found[(ids[2], 'schedule')].id}, no command of {ids[0]}",
            "commandId 'cmd-1' is not a UUID",
        ]
    )
    engine.dispose()


def test_deadlines_are_judged_on_the_configured_clock(fresh_anvil, fresh_pg_url, tmp_path):
    """Under `make run` (clock=chain) a command's acknowledgement deadline and its lateness
    count in simulated time, as every other service's "now" does."""
    ahead, settings = chain_clock_ahead(fresh_anvil, fresh_pg_url, tmp_path, days=2, hour=3)
    chain = Dispatcher(settings=settings, client_id=f"i17-vpp-clock-{uuid.uuid4().hex[:6]}")
    wall = Dispatcher(settings=settings, client_id="i17-vpp-wall", now=lambda: datetime.now(UTC))
    assert int(chain.clock_now().timestamp()) == ahead
    assert abs(wall.clock_now().timestamp() - time.time()) < 5
    chain.engine.dispose()
    wall.engine.dispose()

"""Heartbeats and the freshness checks on the embedded SQLite database: a component silent for
longer than its threshold is degraded with when it was last seen; a fresh one is ok."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from backend.core.config import Settings
from backend.core.db import make_engine
from backend.core.migrate import upgrade
from backend.health.freshness import freshness_checks, iso
from backend.health.heartbeats import BEAT, MATCHER, MQTT, Heartbeat, heartbeats, write_heartbeat
from backend.health.models import ComponentHeartbeat
from backend.market.orders import default_meter_id
from backend.settlement.issuance import issue_certificates
from backend.vpp import downlink
from backend.vpp.models import CommandState
from tests.fixtures.resources import add_aggregator
from tests.fixtures.settlement import build_market
from tests.fixtures.vpp import stored_schedule, vpp_of_batteries


def sqlite_engine(tmp_path):
    url = f"sqlite:///{tmp_path / 'gridledger.db'}"
    upgrade(url)
    return make_engine(url)


def test_heartbeats_go_stale_and_name_the_component_and_since(tmp_path):
    engine = sqlite_engine(tmp_path)
    settings = Settings(_env_file=None, data_dir=tmp_path, health_heartbeat_max_age_s=30)
    now = int(time.time())
    with Session(engine) as session:
        missing = freshness_checks(session, settings, now=now)
    assert missing["beat"]["ok"] is False and missing["beat"]["late"] == "beat: no heartbeat yet"

    for component in (MATCHER, MQTT, BEAT):
        write_heartbeat(engine, component)
    write_heartbeat(engine, BEAT)  # a second write updates the same row
    with Session(engine) as session:
        fresh = freshness_checks(session, settings, now=now)
        assert len(heartbeats(session)) == 3
    assert all(fresh[c]["ok"] and fresh[c]["status"] == "ok" for c in (MATCHER, MQTT, BEAT))

    with Session(engine) as session:
        row = session.get(ComponentHeartbeat, BEAT)
        row.beat_at = datetime.now(UTC) - timedelta(seconds=45)
        session.add(row)
        session.commit()
        stale = freshness_checks(session, settings, now=now)
    assert stale["beat"]["status"] == "degraded" and stale["beat"]["age_s"] >= 45
    assert stale["beat"]["late"].startswith("beat silent for 4")
    assert stale["beat"]["since"].startswith(row.beat_at.strftime("%Y-%m-%dT%H:%M"))
    assert stale["matcher"]["ok"] and stale["mqtt"]["ok"]
    engine.dispose()


def test_heartbeat_writes_at_most_once_per_interval(tmp_path):
    engine = sqlite_engine(tmp_path)
    clock = iter([0.0, 1.0, 6.0]).__next__
    heartbeat = Heartbeat(engine, MATCHER, interval_s=5, clock=clock)
    heartbeat.beat()
    with Session(engine) as session:
        first = session.get(ComponentHeartbeat, MATCHER).beat_at
    heartbeat.beat()  # 1 s later: skipped
    with Session(engine) as session:
        assert session.get(ComponentHeartbeat, MATCHER).beat_at == first
    heartbeat.beat()  # 6 s later: written
    with Session(engine) as session:
        assert session.get(ComponentHeartbeat, MATCHER).beat_at > first
    engine.dispose()


@pytest.fixture
def settlement_world(devnet, fresh_pg_url, redis_client):
    """Devices, meters and their mirror (tests/fixtures/settlement.py); no worker runs."""
    yield from build_market(devnet, fresh_pg_url, redis_client)


def test_issuance_is_late_once_a_metered_hour_passes_its_deadline_unissued(settlement_world):
    world = settlement_world
    world.catch_up()  # devices into the mirror
    person = world.devnet.workload.people[0]
    meter = "0x" + default_meter_id(person.address).hex()
    now = world.ctx.now()
    hour = (now // 3600 - 3) * 3600
    world.meter_readings({(meter, hour + 900 * q): 100 for q in range(4)})
    settings = world.settings.model_copy(update={"health_issuance_late_s": 600})
    due = hour + 3600 + settings.settlement_gate_delay_s
    due += settings.settlement_missing_data_deadline_s
    with world.session() as session:
        early = freshness_checks(session, settings, now=due - 1)["issuance"]
        within = freshness_checks(session, settings, now=due + 600)["issuance"]
        late = freshness_checks(session, settings, now=due + 601)["issuance"]
    assert early["ok"] and early["oldest_waiting_hour"] is None  # not due yet
    assert within["ok"] and within["oldest_waiting_hour"] == hour and within["late_s"] == 600
    assert late["status"] == "degraded" and late["late_s"] == 601
    assert late["late"] == f"certificate for the hour from {iso(hour)} not issued"
    assert late["since"] == iso(due)

    with world.session() as session:  # the worker runs the beat's task: issued, no longer late
        report = issue_certificates(session, world.ctx, world.locks, settings, now=due + 601)
        assert report.issued == 1
        after = freshness_checks(session, settings, now=due + 601)["issuance"]
    assert after["ok"] and after["oldest_waiting_hour"] is None


def test_dispatch_is_degraded_while_commands_wait_on_a_stalled_dispatcher(metered):
    session, owner, *_ = metered
    settings = Settings(_env_file=None, health_heartbeat_max_age_s=30, vpp_ack_timeout_s=10)
    vpp, (battery,) = vpp_of_batteries(session, owner, add_aggregator(session), count=1)
    schedule = stored_schedule(session, vpp, [(battery, [0] * 96)], 1_796_126_400)
    config, plan = downlink.queue_schedule(session, settings, schedule)
    session.flush()
    now = time.time()
    fresh = freshness_checks(session, settings, now=int(now), wall_now=now)["dispatch"]
    assert fresh["ok"] and fresh["pending"] == 2 and fresh["stalled_s"] < 5

    published = datetime.now(UTC) - timedelta(minutes=2)
    for command in (config, plan):
        downlink.mark_sent(command, settings, published)
    config.state = CommandState.LATE  # the device never answered, and the dispatcher said so
    session.flush()
    stalled = freshness_checks(session, settings, now=int(now), wall_now=now)["dispatch"]
    assert stalled["status"] == "degraded" and stalled["overdue"] == 1
    assert stalled["late"] == "0 command(s) not published, 1 not marked late"
    assert stalled["since"] == iso(plan.ack_by.timestamp())
    assert stalled["late_last_hour"] == 1 and stalled["stalled_s"] >= 100

"""Heartbeats and the freshness checks on the embedded SQLite database: a component silent for
longer than its threshold is degraded with when it was last seen; a fresh one is ok."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from backend.core.config import Settings
from backend.core.db import make_engine
from backend.core.migrate import upgrade
from backend.health.freshness import freshness_checks
from backend.health.heartbeats import BEAT, MATCHER, MQTT, Heartbeat, heartbeats, write_heartbeat
from backend.health.models import ComponentHeartbeat
from backend.settlement.models import IssuanceStatus, RecIssuance


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


def test_issuance_lag_counts_from_the_end_of_the_oldest_waiting_hour(tmp_path):
    engine = sqlite_engine(tmp_path)
    settings = Settings(_env_file=None, data_dir=tmp_path, health_issuance_late_s=3_600)
    hour = 1_800_000_000 // 3600 * 3600
    with Session(engine) as session:
        for n, status in enumerate((IssuanceStatus.ISSUED, IssuanceStatus.PENDING)):
            session.add(
                RecIssuance(
                    device_id=1,
                    meter_id="0x" + "11" * 32,
                    owner="0x" + "22" * 20,
                    hour_start=hour + n * 3600,
                    volume_wh=500,
                    status=status.value,
                )
            )
        session.commit()
        waiting_since = hour + 2 * 3600  # the pending hour ended then
        within = freshness_checks(session, settings, now=waiting_since + 3_600)["issuance"]
        late = freshness_checks(session, settings, now=waiting_since + 3_601)["issuance"]
    assert within["ok"] and within["lag_s"] == 3_600 and within["device_hours"] == 1
    assert late["status"] == "degraded" and late["lag_s"] == 3_601
    assert late["since"] == datetime.fromtimestamp(waiting_since, UTC).isoformat().replace(
        "+00:00", "Z"
    )
    engine.dispose()

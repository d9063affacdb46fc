"""The beat's reading-run compaction: on the beat, joins the finished days of the configured
clock, and is a no-op on SQLite (which keeps a row table)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlmodel import Session

import backend.workers.meters as meter_tasks
from backend.core.config import Settings
from backend.core.db import make_engine
from backend.meters.runs import copy_runs
from backend.workers.app import create_celery
from tests.backend.meters.test_runs import columns
from tests.fixtures.meters import NOW, seed_meters


def test_the_compaction_is_a_task_on_the_beat():
    app = create_celery(Settings(_env_file=None, reading_compaction_interval_s=600))
    entry = app.conf.beat_schedule["compact-reading-runs"]
    assert (entry["task"], entry["schedule"]) == ("meters.compact_runs", 600)


@pytest.mark.postgres
def test_the_task_joins_yesterdays_runs_of_a_live_meter(fresh_pg_url, monkeypatch):
    engine = make_engine(fresh_pg_url)
    with Session(engine) as session:
        _, _, solar, _ = seed_meters(session)
        connection = session.connection()
        for slot in range(96):  # one reading per batch, as a live meter sends them
            rows = columns([solar.meter_id], [NOW - 86_400 + 900 * slot], mixed=False)
            assert copy_runs(connection, rows, "mqtt", datetime.now(UTC))
        session.commit()
    wall_after = int(datetime(2026, 1, 1, 6, tzinfo=UTC).timestamp())
    assert wall_after - NOW == 6 * 3_600
    settings = Settings(_env_file=None, database_url=fresh_pg_url)
    monkeypatch.setattr(meter_tasks, "get_engine", lambda: engine)
    monkeypatch.setattr(meter_tasks, "get_settings", lambda: settings)
    monkeypatch.setattr(meter_tasks.clock, "now", lambda _settings: wall_after)

    assert meter_tasks.compact_runs.run() == {"meter_days": 1, "runs_before": 96, "runs_after": 1}
    with engine.connect() as connection:
        runs = connection.execute(text("SELECT first_slot, slots FROM reading_runs")).all()
    assert [tuple(r) for r in runs] == [(0, 96)]
    assert meter_tasks.compact_runs.run()["meter_days"] == 0
    engine.dispose()


def test_on_sqlite_the_task_does_nothing(sqlite_metered, monkeypatch):
    session, *_ = sqlite_metered
    monkeypatch.setattr(meter_tasks, "get_engine", lambda: session.get_bind())
    assert meter_tasks.compact_runs.run() == {"meter_days": 0, "runs_before": 0, "runs_after": 0}

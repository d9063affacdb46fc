"""The daily optimisation, the aggregators' trading and the allocation of settled VPP trades
run on the beat; the daily optimisation, run, plans tomorrow once."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, select

import backend.workers.vpp as vpp_tasks
from backend.core.config import Settings
from backend.core.db import make_engine
from backend.vpp.daily import next_day
from backend.vpp.models import VppDailySchedule, VppSchedule
from backend.workers.app import app as configured
from backend.workers.app import create_celery
from tests.fixtures.anvil import chain_clock_ahead
from tests.fixtures.vpp import committed_vpp


def test_the_daily_optimisation_is_a_task_on_the_beat():
    app = create_celery(Settings(_env_file=None, vpp_daily_interval_s=600))
    entry = app.conf.beat_schedule["optimize-vpps-daily"]
    assert (entry["task"], entry["schedule"]) == ("vpp.optimize_daily", 600)
    assert "vpp.optimize_daily" in configured.tasks


def test_the_task_plans_each_vpp_once(fresh_pg_url, monkeypatch):
    settings = Settings(_env_file=None, database_url=fresh_pg_url)
    engine = make_engine(fresh_pg_url)
    vpp_id = committed_vpp(engine)
    monkeypatch.setattr(vpp_tasks, "get_engine", lambda: engine)
    monkeypatch.setattr(vpp_tasks, "get_settings", lambda: settings)
    first = vpp_tasks.optimize_daily.run()
    second = vpp_tasks.optimize_daily.run()
    assert first["planned"] == [str(vpp_id)] and first["failed"] == {}
    assert second["planned"] == [] and second["already"] == [str(vpp_id)]
    with Session(engine) as session:
        (run,) = session.exec(select(VppDailySchedule)).all()
        assert run.day_start == first["day_start"] and run.day_start % 86_400 == 0
    tomorrow = next_day(datetime.now(UTC))
    assert first["day_start"] in (tomorrow - 86_400, tomorrow)  # (a run across midnight)
    engine.dispose()


def test_under_the_chain_clock_the_task_plans_the_chains_next_day(
    fresh_pg_url, fresh_anvil, tmp_path, monkeypatch
):
    """`make run`'s chain clock is at 20:00 three days after the wall's today: the plan is
    for the day after the chain's, not the wall's tomorrow."""
    ahead, settings = chain_clock_ahead(fresh_anvil, fresh_pg_url, tmp_path, days=3, hour=20)
    engine = make_engine(fresh_pg_url)
    vpp_id = committed_vpp(engine)
    monkeypatch.setattr(vpp_tasks, "get_engine", lambda: engine)
    monkeypatch.setattr(vpp_tasks, "get_settings", lambda: settings)
    report = vpp_tasks.optimize_daily.run()
    chains_tomorrow = (ahead // 86_400 + 1) * 86_400
    assert (report["day_start"], report["planned"]) == (chains_tomorrow, [str(vpp_id)])
    with Session(engine) as session:
        (run,) = session.exec(select(VppDailySchedule)).all()
        schedule = session.get(VppSchedule, run.schedule_id)
        assert (run.day_start, schedule.start) == (chains_tomorrow, chains_tomorrow)
    engine.dispose()


def test_trading_and_allocation_are_tasks_on_the_beat():
    app = create_celery(Settings(vpp_trading_interval_s=600, settlement_beat_interval_s=20))
    schedule = app.conf.beat_schedule
    assert (schedule["trade-vpps"]["task"], schedule["trade-vpps"]["schedule"]) == (
        "vpp.trade",
        600,
    )
    allocate = schedule["allocate-vpp-trades"]
    assert (allocate["task"], allocate["schedule"]) == ("vpp.allocate", 20)
    assert {"vpp.trade", "vpp.allocate"} <= set(configured.tasks)


def test_the_beat_leaves_trading_to_the_api_when_told():
    app = create_celery(Settings(vpp_trading_beat=False))
    assert "trade-vpps" not in app.conf.beat_schedule
    assert app.conf.beat_schedule["optimize-vpps-daily"]["task"] == "vpp.optimize_daily"
    assert app.conf.beat_schedule["allocate-vpp-trades"]["task"] == "vpp.allocate"


def test_the_beat_leaves_the_daily_optimisation_to_the_api_when_told():
    app = create_celery(Settings(_env_file=None, vpp_daily_beat=False))
    assert "optimize-vpps-daily" not in app.conf.beat_schedule
    assert app.conf.beat_schedule["trade-vpps"]["task"] == "vpp.trade"
    assert app.conf.beat_schedule["allocate-vpp-trades"]["task"] == "vpp.allocate"

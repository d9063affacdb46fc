"""The aggregators' trading and the allocation of settled VPP trades run on the beat."""

from __future__ import annotations

from backend.core.config import Settings
from backend.workers.app import create_celery
from backend.workers.vpp import app as configured


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
    assert app.conf.beat_schedule["allocate-vpp-trades"]["task"] == "vpp.allocate"

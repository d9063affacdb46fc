"""The beat's daily refit: every VPP with enough member telemetry gets a stored forecast made
on behalf of its aggregator; VPPs without history are skipped by name; the task is scheduled."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import select

from backend.core.config import Settings
from backend.forecast.models import StoredForecast
from backend.forecast.services import refresh_vpp_forecasts
from backend.vpp import services as vpp_services
from backend.vpp.schemas import VppCreate
from backend.workers import forecast as _registers_the_task  # noqa: F401
from backend.workers.app import app as configured
from backend.workers.app import create_celery
from tests.fixtures.forecast import pv_history
from tests.fixtures.resources import WALL, add_aggregator, add_pv

FIRST = 1_767_225_600  # 2026-01-01T00:00Z
SLOTS = 8 * 96


def test_the_refit_forecasts_vpps_with_history_and_names_the_others(metered):
    session, owner, *_ = metered
    aggregator = add_aggregator(session)
    fed = vpp_services.create_vpp(session, aggregator, VppCreate(name="fed"))
    empty = vpp_services.create_vpp(session, aggregator, VppCreate(name="empty"))
    gone = vpp_services.create_vpp(session, aggregator, VppCreate(name="gone"))
    vpp_services.dissolve_vpp(session, WALL, aggregator, gone.id)
    panel = add_pv(session, owner)
    vpp_services.join(session, WALL, owner, fed.id, panel.id)
    session.add_all(pv_history(panel.id, FIRST, SLOTS))
    session.commit()

    now = datetime.fromtimestamp(FIRST + SLOTS * 900 - 60, UTC)
    report = refresh_vpp_forecasts(session, Settings(), now=now)

    assert report.forecast == [str(fed.id)]
    assert report.skipped == {str(empty.id): "insufficient-history"}
    stored = session.exec(select(StoredForecast)).all()
    assert [(f.target_kind, f.target_id, f.requested_by) for f in stored] == [
        ("vpp", str(fed.id), aggregator.id)
    ]
    assert stored[0].start == FIRST + SLOTS * 900 and len(stored[0].values) == 96


def test_the_refit_is_a_task_on_the_beat():
    app = create_celery(Settings(forecast_refresh_interval_s=3_600))
    entry = app.conf.beat_schedule["refresh-vpp-forecasts"]
    assert (entry["task"], entry["schedule"]) == ("forecast.refresh_vpps", 3_600)
    assert "forecast.refresh_vpps" in configured.tasks

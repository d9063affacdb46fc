"""The beat's forecast refit under `GRIDLEDGER_CLOCK=chain` (`make run`): it forecasts from the
chain's simulated now, days ahead of the wall, not from the wall clock."""

from __future__ import annotations

from sqlmodel import Session, select

import backend.workers.forecast as forecast_tasks
from backend.core.db import make_engine
from backend.forecast.models import StoredForecast
from backend.vpp import services as vpp_services
from backend.vpp.schemas import VppCreate
from tests.fixtures.anvil import chain_clock_ahead
from tests.fixtures.forecast import pv_history
from tests.fixtures.meters import seed_meters
from tests.fixtures.resources import WALL, add_aggregator, add_pv

HISTORY = 8 * 96  # slots of PV telemetry before the chain's now


def test_under_the_chain_clock_the_refit_forecasts_from_the_chains_now(
    fresh_pg_url, fresh_anvil, tmp_path, monkeypatch
):
    """The chain is at 18:00 three days after the wall's today, the panel's history ends there:
    the VPP's forecast starts at the chain's next slot (the wall's now would find no history
    and forecast nothing)."""
    ahead, settings = chain_clock_ahead(fresh_anvil, fresh_pg_url, tmp_path, days=3, hour=18)
    engine = make_engine(fresh_pg_url)
    with Session(engine) as session:
        owner, *_ = seed_meters(session)
        aggregator = add_aggregator(session)
        vpp = vpp_services.create_vpp(session, aggregator, VppCreate(name="ahead"))
        panel = add_pv(session, owner)
        vpp_services.join(session, WALL, owner, vpp.id, panel.id)
        session.add_all(pv_history(panel.id, ahead - HISTORY * 900, HISTORY))
        session.commit()
        vpp_id = str(vpp.id)
    monkeypatch.setattr(forecast_tasks, "get_engine", lambda: engine)
    monkeypatch.setattr(forecast_tasks, "get_settings", lambda: settings)

    report = forecast_tasks.refresh_vpps.run()

    assert report == {"forecast": [vpp_id], "skipped": {}}
    with Session(engine) as session:
        (stored,) = session.exec(select(StoredForecast)).all()
    assert (stored.target_id, stored.start) == (vpp_id, ahead + 900)
    assert len(stored.values) == 96
    engine.dispose()

"""`POST /v1/vpp/{id}/optimize`'s service on the simulated clock: without a `start` the
schedule begins at the next slot of the configured clock (the chain's under `make run`), and
its adherence counts the slots that clock has seen end; forecasts default the same way."""

from __future__ import annotations

from sqlmodel import Session, select
from web3 import Web3

from backend.accounts.models import Account
from backend.core.db import make_engine
from backend.forecast.models import TargetKind
from backend.forecast.schemas import ForecastRequest
from backend.forecast.services import run_forecast
from backend.vpp.adherence import adherence
from backend.vpp.models import Vpp, VppMembership
from backend.vpp.optimize import optimize_vpp
from backend.vpp.schemas import OptimizeRequest
from scripts.neighbourhood.simulator import ChainClock
from tests.fixtures.anvil import chain_clock_ahead
from tests.fixtures.forecast import pv_history
from tests.fixtures.vpp import SLOT, committed_vpp


def test_defaults_follow_the_chains_clock_not_the_wall(fresh_anvil, fresh_pg_url, tmp_path):
    ahead, settings = chain_clock_ahead(fresh_anvil, fresh_pg_url, tmp_path, days=5, hour=6)
    engine = make_engine(fresh_pg_url)
    vpp_id = committed_vpp(engine)
    with Session(engine) as session:
        member = session.exec(select(VppMembership.resource_id)).one()
        session.add_all(pv_history(member, ahead - 8 * 96 * SLOT, 8 * 96))  # the week before
        session.commit()
        aggregator = session.get(Account, session.get(Vpp, vpp_id).aggregator_id)
        result = optimize_vpp(
            session, settings, aggregator, vpp_id, OptimizeRequest(buyPrice=[100] * 96)
        )
        session.commit()
        assert int(result.start.timestamp()) == ahead + SLOT  # the next slot of chain time

        ChainClock(Web3(Web3.HTTPProvider(fresh_anvil.rpc_url))).advance_to(ahead + 3 * SLOT + 5)
        followed = adherence(session, settings, aggregator, vpp_id, result.scheduleId)
        assert followed.endedSlots == 2  # wall time is days before the schedule: 0

        request = ForecastRequest(target=TargetKind.VPP, targetId=str(vpp_id))
        forecast = run_forecast(session, settings, aggregator, request)  # wall: no history
        assert int(forecast.values[0].timestamp.timestamp()) == ahead + 3 * SLOT + SLOT
    engine.dispose()

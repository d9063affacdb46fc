"""The daily optimisation: each VPP's next UTC day planned once from market prices and the
stored forecasts (output and demand), stored with its inputs and queued for its devices;
reruns change nothing; demand is served unless the penalty for leaving it is below the price."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, func, select

from backend.core.config import Settings
from backend.core.db import make_engine
from backend.vpp.daily import DAY, optimize_all
from backend.vpp.models import DispatchCommand, VppDailySchedule, VppSchedule
from indexer.models import Trade
from tests.fixtures.forecast import stored_forecast
from tests.fixtures.meters import seed_meters
from tests.fixtures.resources import add_aggregator
from tests.fixtures.trades import a_trade
from tests.fixtures.vpp import SLOT, committed_vpp, vpp_of_batteries

NOW = datetime(2026, 12, 1, 15, 7, tzinfo=UTC)
DAY_START = 1_796_169_600  # 2026-12-02T00:00Z, the day after NOW


def trade(trade_id: int, delivery_start: int, price: int, quantity_wh: int) -> Trade:
    row = a_trade(trade_id)
    row.delivery_start, row.delivery_end = delivery_start, delivery_start + SLOT
    row.price, row.quantity_wh, row.payment = price, quantity_wh, price * quantity_wh // 1000
    return row


def count(session: Session, model) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def test_each_vpp_gets_one_schedule_per_day_from_prices_and_forecasts(fresh_pg_url):
    settings = Settings(_env_file=None, database_url=fresh_pg_url, vpp_price_lookback_days=7)
    engine = make_engine(fresh_pg_url)
    with Session(engine) as session:
        owner, *_ = seed_meters(session)
        forecast_vpp, (battery,) = vpp_of_batteries(
            session, owner, add_aggregator(session), count=1
        )
        bare_vpp, _ = vpp_of_batteries(
            session, owner, add_aggregator(session, "second@example.org"), count=1
        )
        yesterday = DAY_START - DAY
        session.add_all(
            [
                trade(1, yesterday + 4 * SLOT, price=40, quantity_wh=1_000),
                trade(2, yesterday - DAY + 80 * SLOT, price=400, quantity_wh=3_000),
                trade(3, yesterday - 8 * DAY, price=1, quantity_wh=10**6),  # outside the lookback
            ]
        )
        # the VPP's output, storage included: not what the plan takes as PV
        session.add(stored_forecast("vpp", forecast_vpp.id, DAY_START, [9_999] * 96))
        stored = stored_forecast(
            "vppGeneration",
            forecast_vpp.id,
            DAY_START - 4 * SLOT,
            [-5 if i % 2 else i for i in range(100)],
        )
        session.add(stored)
        session.commit()
        ids = (forecast_vpp.id, bare_vpp.id, battery.id, stored.id)

    with Session(engine) as session:
        report = optimize_all(session, settings, now=NOW)
    forecast_id, bare_id, battery_id, stored_id = ids
    assert report.day_start == DAY_START
    assert sorted(report.planned) == sorted([str(forecast_id), str(bare_id)]) and not report.failed

    with Session(engine) as session:
        run = session.get(VppDailySchedule, (forecast_id, DAY_START))
        schedule = session.get(VppSchedule, run.schedule_id)
        assert schedule.start == DAY_START and schedule.result["status"] == "completed"
        request = schedule.inputs["request"]
        overall = round((40 * 1_000 + 400 * 3_000) / 4_000)  # slots without trades: 310
        assert request["buyPrice"][4] == 40 and request["buyPrice"][80] == 400
        assert request["buyPrice"][0] == overall == request["sellPrice"][0]
        assert request["pvWh"][:4] == [4, 0, 6, 0]  # from slot 4 of the forecast, ≥ 0
        assert schedule.inputs["daily"] == {
            "day": DAY_START,
            "prices": "market",
            "priceLookbackDays": 7,
            "forecastId": str(stored_id),
            "forecast": "stored",
            "demandForecastId": None,  # the members' meters have no readings yet
            "demandForecast": "insufficient-history",
        }
        assert request["demandWh"] == [0] * 96
        setpoints = schedule.result["allocation"][0]["setpointsW"]
        assert setpoints[4] < 0 < setpoints[80]  # charge at the cheapest, sell at the dearest
        bare = session.get(
            VppSchedule, session.get(VppDailySchedule, (bare_id, DAY_START)).schedule_id
        )
        assert bare.inputs["daily"]["forecast"] == "insufficient-history"
        assert bare.inputs["request"]["pvWh"] == [0] * 96
        commands = session.exec(
            select(DispatchCommand).where(DispatchCommand.resource_id == battery_id)
        ).all()
        assert sorted(c.kind for c in commands) == ["config", "schedule"]
        counts = (count(session, VppSchedule), count(session, DispatchCommand))

    with Session(engine) as session:  # the beat asks again the same day: nothing changes
        again = optimize_all(session, settings, now=NOW.replace(hour=23))
    assert again.planned == [] and sorted(again.already) == sorted([str(forecast_id), str(bare_id)])
    with Session(engine) as session:
        assert (count(session, VppSchedule), count(session, DispatchCommand)) == counts
        assert count(session, VppDailySchedule) == 2
    engine.dispose()


def test_a_market_without_trades_uses_the_default_price(fresh_pg_url):
    settings = Settings(_env_file=None, database_url=fresh_pg_url, vpp_default_price_per_kwh=123)
    engine = make_engine(fresh_pg_url)
    vpp_id = committed_vpp(engine)
    with Session(engine) as session:
        assert optimize_all(session, settings, now=NOW).planned == [str(vpp_id)]
        schedule = session.exec(select(VppSchedule)).one()
        assert schedule.inputs["request"]["buyPrice"] == [123] * 96
        assert schedule.inputs["daily"]["prices"] == "default"
    engine.dispose()


def test_the_members_demand_is_served_at_the_markets_price_and_shed_only_when_cheaper(
    fresh_pg_url,
):
    engine = make_engine(fresh_pg_url)
    vpp_id = committed_vpp(engine)  # one 5 kW / 13.5 kWh battery at 10 kWh
    evening = [1_500 if 68 <= i % 96 < 84 else 300 for i in range(2 * 96)]  # 17:00-21:00 peak
    with Session(engine) as session:
        session.add(stored_forecast("vppDemand", vpp_id, DAY_START, evening))
        session.commit()
    served = Settings(_env_file=None, database_url=fresh_pg_url)  # 0.1 gUSD/kWh; 10 to shed
    cheap_to_shed = Settings(_env_file=None, database_url=fresh_pg_url, vpp_unmet_penalty_per_kwh=1)
    with Session(engine) as session:
        assert optimize_all(session, served, now=NOW).planned == [str(vpp_id)]
        assert optimize_all(session, cheap_to_shed, now=NOW.replace(day=2)).planned == [str(vpp_id)]
        first, second = (
            session.get(VppSchedule, session.get(VppDailySchedule, (vpp_id, day)).schedule_id)
            for day in (DAY_START, DAY_START + DAY)
        )
    demand = first.inputs["request"]["demandWh"]
    assert demand == evening[:96] and second.inputs["request"]["demandWh"] == evening[96:]
    assert first.inputs["daily"]["demandForecast"] == "stored"
    grid = first.result["grid"]
    assert sum(grid["unmetWh"]) == 0
    battery = first.result["allocation"][0]
    discharged = [max(w, 0) // 4 for w in battery["setpointsW"]]
    charged = [max(-w, 0) // 4 for w in battery["setpointsW"]]
    for slot in range(96):  # every slot balances: import + discharge = demand + charge + export
        supplied = grid["importWh"][slot] + discharged[slot]
        used = demand[slot] + charged[slot] + grid["exportWh"][slot]
        assert abs(supplied - used) <= 2, slot
    assert second.result["status"] == "completed"
    assert sum(second.result["grid"]["unmetWh"]) > 0.9 * sum(evening[96:])
    assert first.cost <= 100 * sum(evening[:96]) + 100  # imports at 100 per Wh, no penalty
    engine.dispose()

"""The simulated VENs of `make run` against a real VTN over TLS: the households and the
battery whose meters exist are enrolled (idempotently), register, answer events as their
opt-out probability says, and report usage (W) and status."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from backend.accounts.models import Account
from backend.core.db import make_engine
from backend.meters.models import MeterKind
from backend.meters.schemas import MeterCreate
from backend.meters.services import register_meter
from backend.openadr import services
from backend.openadr.models import EventDelivery, ReportValue, SignalName, Ven
from backend.openadr.vtn import Vtn
from scripts.vens.fleet import build_ven, enrol_fleet, ven_name, wanted_meters
from tests.fixtures.openadr import until, vtn_settings

logging.getLogger("openleadr").setLevel(logging.CRITICAL)


def test_wanted_meters_are_the_first_households_and_the_battery(tmp_path):
    settings = vtn_settings("sqlite://", tmp_path).model_copy(update={"sim_vens": 2})
    assert wanted_meters(settings) == ["prosumer01-meter", "prosumer02-meter", "battery-meter"]
    assert wanted_meters(settings.model_copy(update={"sim_vens": 0})) == []
    assert ven_name("battery-meter") == "sim-battery"


def test_the_fleet_registers_answers_events_and_reports(fresh_pg_url, tmp_path):
    base = vtn_settings(fresh_pg_url, tmp_path / "tls")
    settings = base.model_copy(
        update={"sim_vens": 1, "sim_ven_opt_out_probability": 1.0, "data_dir": tmp_path}
    )
    engine = make_engine(fresh_pg_url)
    with Session(engine) as session:
        owner = Account(email="prosumer01@example.org", address="0x" + "ab" * 20)
        battery = Account(email="battery@example.org", address="0x" + "cd" * 20)
        session.add_all([owner, battery])
        session.flush()
        for account, name in ((owner, "prosumer01-meter"), (battery, "battery-meter")):
            register_meter(
                session, account, MeterCreate(name=name, kind=MeterKind.BOTH, capacity_w=9_000)
            )
        session.commit()
    fleet = enrol_fleet(engine, settings)
    assert sorted(fleet) == ["sim-battery", "sim-prosumer01"]
    again = enrol_fleet(engine, settings)  # a restart reuses the VENs and their files
    assert {n: c.fingerprint for n, (c, _m) in again.items()} == {
        n: c.fingerprint for n, (c, _m) in fleet.items()
    }

    async def scenario():
        vtn = Vtn(settings, engine)
        await vtn.start()
        vens = [
            build_ven(settings, engine, creds, meter_id, seed=1, report_every=timedelta(seconds=1))
            for creds, meter_id in fleet.values()
        ]
        try:
            for ven in vens:
                await ven.client.run()
            with Session(engine) as session:
                event = services.publish_event(
                    session,
                    signal=SignalName.SIMPLE,
                    intervals=[services.Interval(datetime.now(UTC) + timedelta(hours=1), 900, 1)],
                    ven_ids=[c.ven_id for c, _m in fleet.values()],
                )
                session.commit()
                event_id = event.id

            def settled() -> bool:
                with Session(engine) as session:
                    opts = [
                        d.opt_type
                        for d in session.exec(
                            select(EventDelivery).where(EventDelivery.event_id == event_id)
                        )
                    ]
                    reports = session.exec(select(ReportValue)).all()
                    statuses = [v.status for v in session.exec(select(Ven))]
                return (
                    opts == ["optOut", "optOut"]
                    and {r.ven_id for r in reports} == {"ven-sim-battery", "ven-sim-prosumer01"}
                    and all(statuses)
                )

            await until(settled, timeout=20)
            return [ven.answers for ven in vens]
        finally:
            for ven in vens:
                await ven.client.stop()
            await vtn.stop()

    answers = asyncio.run(scenario())
    assert answers == [["optOut"], ["optOut"]]  # probability 1
    with Session(engine) as session:
        values = session.exec(select(ReportValue)).all()
        assert {(v.measurement, v.unit, v.value) for v in values} == {("RealPower", "W", 0.0)}
        assert all(v.status and v.status["online"] for v in session.exec(select(Ven)))
    engine.dispose()

"""`/v1/ws` live DER channels on a real socket: telemetry stored by the ingestion path reaches
`vpp.<id>.status`, `consumption.real-time` and `generation.solar` in the seed's shapes, and a
VPP's channel is only for its aggregator and its members' owners."""

from __future__ import annotations

import asyncio
import json
import uuid

import anyio
import pytest
from sqlmodel import Session
from websockets.asyncio.client import ClientConnection, connect

from backend.core.config import Settings
from backend.resources.telemetry import record_samples, sample_from_message
from backend.vpp.models import VppMembership
from tests.fixtures.app import app_on
from tests.fixtures.meters import seed_meters
from tests.fixtures.resources import add_aggregator, add_pv
from tests.fixtures.server import serve
from tests.fixtures.services import TEST_REDIS_URL
from tests.fixtures.vpp import bearer, vpp_of_batteries

T0 = "2026-12-01T12:00:00Z"

pytestmark = pytest.mark.redis


async def receive(socket: ClientConnection) -> dict:
    return json.loads(await asyncio.wait_for(socket.recv(), 10))


async def subscribe(socket: ClientConnection, *channels: str) -> dict:
    await socket.send(json.dumps({"action": "subscribe", "channels": list(channels)}))
    return await receive(socket)


@pytest.mark.parametrize("redis_url", [TEST_REDIS_URL, ""], ids=["stream", "table"])
def test_telemetry_reaches_the_live_channels_of_those_allowed(fresh_pg_url, tmp_path, redis_url):
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        database_url=fresh_pg_url,
        redis_url=redis_url,
        outbox_stream=f"test:outbox:{uuid.uuid4()}",
    )
    app, engine = app_on(fresh_pg_url, settings)
    with Session(engine) as session:
        owner, other, *_ = seed_meters(session)
        aggregator = add_aggregator(session)
        vpp, (battery,) = vpp_of_batteries(session, owner, aggregator, count=1, soc_wh=0)
        pv = add_pv(session, owner)
        session.add(VppMembership(vpp_id=vpp.id, resource_id=pv.id, consented_by=owner.id))
        session.commit()
        channel = f"vpp.{vpp.id}.status"
        headers = {who: bearer(a) for who, a in [("aggregator", aggregator), ("other", other)]}
        owner_token = bearer(owner)["Authorization"].removeprefix("Bearer ")
        battery_id, pv_id, vpp_id = battery.id, pv.id, vpp.id

    def report() -> None:
        topic = "energy-cloud/KR-SE-001/x/{}/{}"
        samples = [
            sample_from_message(
                topic.format(battery_id, "output"),
                f'{{"timestamp": "{T0}", "value": -1.5, "unit": "kW"}}'.encode(),
                "energy-cloud",
            ),
            sample_from_message(
                topic.format(battery_id, "soc"),
                f'{{"timestamp": "{T0}", "value": 50, "unit": "%"}}'.encode(),
                "energy-cloud",
            ),
            sample_from_message(
                topic.format(pv_id, "output"),
                f'{{"timestamp": "{T0}", "value": 4000}}'.encode(),
                "energy-cloud",
            ),
        ]
        with Session(engine) as session:
            assert record_samples(session, samples, settings=settings) == (3, [])
            session.commit()

    async def scenario(base: str) -> dict:
        url = base.replace("http", "ws", 1) + "/v1/ws"
        async with (
            connect(url, additional_headers=headers["aggregator"]) as runner,
            connect(url, additional_headers=headers["other"]) as outsider,
            connect(url) as anonymous,
        ):
            found: dict = {}
            found["runner"] = await subscribe(
                runner, channel, "consumption.real-time", "generation.solar"
            )
            found["outsider"] = await subscribe(outsider, channel, "generation.solar")
            found["outsider_ack"] = await receive(outsider)
            found["anonymous"] = await subscribe(anonymous, channel)
            found["anonymous_ack"] = await receive(anonymous)
            await anonymous.send(json.dumps({"action": "authenticate", "token": owner_token}))
            found["signed_in"] = await receive(anonymous)
            found["member"] = await subscribe(anonymous, channel)
            await anyio.to_thread.run_sync(report)
            found["updates"] = {m["channel"]: m for m in [await receive(runner) for _ in range(3)]}
            found["member_update"] = await receive(anonymous)
            found["outsider_update"] = await receive(outsider)
            return found

    try:
        with serve(app) as base:
            found = asyncio.run(scenario(base))
    finally:
        engine.dispose()
    assert found["runner"]["payload"]["channels"] == sorted(
        [channel, "consumption.real-time", "generation.solar"]
    )
    assert found["outsider"]["payload"] == {
        "error": "forbidden",
        "detail": "not your VPP",
        "channels": [channel],
    }
    assert found["outsider_ack"]["payload"]["channels"] == ["generation.solar"]
    assert found["anonymous"]["payload"]["detail"] == "sign in first"
    assert found["anonymous_ack"]["payload"]["channels"] == []
    assert found["signed_in"]["payload"]["action"] == "authenticate"
    assert found["member"]["payload"]["channels"] == [channel]

    status = found["updates"][channel]
    assert set(status) == {"channel", "timestamp", "payload"}
    vpp = status["payload"]
    assert (vpp["vppId"], vpp["aggregatedOutput"], vpp["status"], vpp["unit"]) == (
        str(vpp_id),
        2_500,
        "operational",
        "W",
    )
    assert {(r["type"], r["current"], r["soc"]) for r in vpp["resources"]} == {
        ("battery", -1_500, 0.5),
        ("pv", 4_000, None),
    }
    assert found["updates"]["consumption.real-time"]["payload"] == {
        "total": 1_500,
        "unit": "W",
        "breakdown": {"battery": 1_500},
    }
    solar = {"total": 4_000, "unit": "W", "breakdown": {"KR-SE-001": 4_000}, "resources": 1}
    assert found["updates"]["generation.solar"]["payload"] == solar
    assert found["member_update"]["payload"] == vpp
    assert found["outsider_update"]["channel"] == "generation.solar"

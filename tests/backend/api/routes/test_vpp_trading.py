"""`POST /v1/vpp/{id}/orders` on a devnet: the aggregator previews, then places its VPP's orders
from a hand-built forecast and a schedule's battery headroom, signed with its custodial key on
the VPP's meter; wallet aggregators get `wallet-must-sign`; `GET /v1/vpp/{id}/allocations`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlmodel import Session, select

from backend.accounts.models import Account
from backend.chain.contracts import chain_for
from backend.core.utc import utc_now
from backend.forecast.models import StoredForecast
from backend.market.models import SignedOrder
from backend.vpp.flex_delivery import FlexReport, deliver_flex
from backend.vpp.models import DispatchCommand, Vpp, VppSchedule
from backend.vpp.trading import place, trade_all_vpps
from backend.vpp.trading_models import VppOrder
from backend.vpp.trading_schemas import VppOrderPlan
from tests.fixtures.api import match, wallet_bid
from tests.fixtures.forecast import stored_forecast
from tests.fixtures.indexing import catch_up
from tests.fixtures.resources import resource_body

SLOT = 900


def make_aggregator(engine, address: str) -> Account:
    with Session(engine) as session:
        account = session.exec(select(Account).where(Account.address == address.lower())).one()
        account.roles = ["aggregator"]
        session.commit()
        session.refresh(account)
        return account


def store_forecast(engine, vpp_id: str, start: int, values: list[int]) -> uuid.UUID:
    with Session(engine) as session:
        forecast = stored_forecast("vpp", vpp_id, start, values)
        session.add(forecast)
        session.commit()
        return forecast.id


def vpp_with_battery(market) -> tuple[Account, str, dict, str]:
    """The seller, an aggregator, runs a VPP with its battery, scheduled to idle full from the
    market's period: (aggregator, VPP id, battery, schedule id)."""
    api, client, seller, period = (
        market["api"],
        market["client"],
        market["seller"],
        market["period"],
    )
    aggregator = make_aggregator(api.engine, market["seller_address"])
    vpp_id = client.post("/v1/vpp", json={"name": "Block 7"}, headers=seller).json()["vppId"]
    meter = client.post("/v1/meters", headers=seller, json={"name": "home", "capacity_w": 9_000})
    battery = client.post(
        "/v1/resources", headers=seller, json=resource_body(meter=meter.json()["meter_id"])
    ).json()
    joined = client.post(
        f"/v1/vpp/{vpp_id}/resources", json={"resourceId": battery["id"]}, headers=seller
    )
    assert joined.status_code == 201, joined.text
    with Session(api.engine) as session:  # the daily optimisation: the battery idles, full
        schedule = VppSchedule(
            vpp_id=uuid.UUID(vpp_id),
            requested_by=aggregator.id,
            start=period,
            status="optimal",
            cost=0,
            inputs={"request": {"sellPrice": [90_000] * 96, "buyPrice": [210_000] * 96}},
            result={
                "status": "completed",
                "allocation": [
                    {"resourceId": battery["id"], "setpointsW": [0] * 96, "socWh": [13_500] * 96}
                ],
            },
        )
        session.add(schedule)
        session.commit()
        return aggregator, vpp_id, battery, str(schedule.id)


def test_aggregator_previews_then_places_its_vpps_orders(market):
    api, client, seller = market["api"], market["client"], market["seller"]
    period = market["period"]
    aggregator, vpp_id, _, schedule_id = vpp_with_battery(market)
    forecast_id = store_forecast(api.engine, vpp_id, period, [3_000, -2_000, 20, 1_000])

    preview = client.post(f"/v1/vpp/{vpp_id}/orders", json={"dryRun": True}, headers=seller)
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert (body["forecastId"], body["scheduleId"]) == (str(forecast_id), schedule_id)
    # headroom 5 kW x 1/4 h = 1,250 Wh a slot: offers add half (20 Wh + 625 is worth
    # offering), and half covers part of the shortfall (2,000 - 625)
    assert [
        (o["side"], o["deliveryStart"] - period, o["quantityWh"], o["price"], o["status"])
        for o in body["orders"]
    ] == [
        ("sell", 0, "3625", "90000", "planned"),
        ("buy", 900, "1375", "210000", "planned"),
        ("sell", 1_800, "645", "90000", "planned"),
        ("sell", 2_700, "1625", "90000", "planned"),
    ]
    with Session(api.engine) as session:
        assert session.exec(select(SignedOrder)).all() == []

    placed = client.post(f"/v1/vpp/{vpp_id}/orders", json={}, headers=seller)
    assert placed.status_code == 200, placed.text
    orders = placed.json()["orders"]
    # sells locked collateral from the deposit; the seller holds no gUSD to bid with
    assert [(o["side"], o["status"], o["problem"]) for o in orders] == [
        ("sell", "placed", None),
        ("buy", "refused", "insufficient-funds"),
        ("sell", "placed", None),
        ("sell", "placed", None),
    ]
    mine = client.get("/v1/trading/orders", headers=seller).json()["items"]
    assert {o["id"] for o in mine} == {orders[n]["orderId"] for n in (0, 2, 3)}
    assert {o["meter_id"] for o in mine} == {body["meterId"]}
    with Session(api.engine) as session:
        links = session.exec(select(VppOrder).order_by(VppOrder.delivery_start)).all()
        assert [(str(v.vpp_id), v.quantity_wh, v.flexibility_wh) for v in links] == [
            (vpp_id, 3_625, 1_250),
            (vpp_id, 645, 1_250),
            (vpp_id, 1_625, 1_250),
        ]
    again = client.post(f"/v1/vpp/{vpp_id}/orders", json={}, headers=seller).json()["orders"]
    assert [o["side"] for o in again] == ["buy"]  # slots already sold are not traded twice
    # a run that planned before another placed (the beat and an API call at once) re-checks
    # the slot under the VPP's lock and places nothing
    with Session(api.engine) as session:
        late = VppOrderPlan.model_validate({**body["orders"][0], "status": "planned"})
        place(
            session,
            api.settings,
            chain_for(api.settings),
            session.get(Account, aggregator.id),
            session.get(Vpp, uuid.UUID(vpp_id)),
            body["meterId"],
            late,
            session.get(StoredForecast, forecast_id),
            None,
        )
        assert (late.status, late.problem) == ("refused", "duplicate-order")
        assert len(session.exec(select(SignedOrder)).all()) == 3

    allocations = client.get(f"/v1/vpp/{vpp_id}/allocations", headers=seller)
    assert allocations.status_code == 200 and allocations.json() == []


def test_wallet_aggregators_sign_and_others_are_refused(market):
    api, client, buyer, seller = market["api"], market["client"], market["buyer"], market["seller"]
    make_aggregator(api.engine, market["wallet"].address)
    vpp_id = client.post("/v1/vpp", json={"name": "Wallet VPP"}, headers=buyer).json()["vppId"]
    missing = client.post(f"/v1/vpp/{vpp_id}/orders", json={}, headers=buyer)
    assert missing.status_code == 404 and missing.json()["type"].endswith("/vpp-forecast-not-found")
    store_forecast(api.engine, vpp_id, market["period"], [2_000])
    reply = client.post(f"/v1/vpp/{vpp_id}/orders", json={"sellPrice": "99000"}, headers=buyer)
    assert reply.status_code == 422, reply.text
    problem = reply.json()
    assert problem["type"].endswith("/wallet-must-sign")
    assert [(o["side"], o["quantity_wh"], o["price"]) for o in problem["orders"]] == [
        ("sell", "2000", "99000")
    ]
    with Session(api.engine) as session:
        assert session.exec(select(SignedOrder)).all() == []
        # the beat's run skips the wallet aggregator's VPP and names why
        report = trade_all_vpps(session, api.settings, chain_for(api.settings))
        assert (report.placed, report.skipped) == ({}, {vpp_id: "wallet-must-sign"})
    stranger = client.post(f"/v1/vpp/{vpp_id}/orders", json={"dryRun": True}, headers=seller)
    assert stranger.status_code == 403  # not an aggregator


def test_a_fill_on_an_order_relying_on_headroom_patches_the_batterys_schedule(market):
    api, client, seller, period = (
        market["api"],
        market["client"],
        market["seller"],
        market["period"],
    )
    _, vpp_id, battery, schedule_id = vpp_with_battery(market)
    store_forecast(api.engine, vpp_id, period, [3_000])
    placed = client.post(
        f"/v1/vpp/{vpp_id}/orders",
        json={"flexShare": 0.5, "sellPrice": "100000"},
        headers=seller,
    ).json()["orders"]
    # the 3,000 Wh surplus and half the battery's 1,250 Wh headroom, committed to the battery
    assert [(o["quantityWh"], o["flexWh"], o["status"]) for o in placed] == [
        ("3625", 625, "placed")
    ]
    with Session(api.engine) as session:
        order = session.exec(select(VppOrder)).one()
        assert (order.flex_wh, order.flex_split) == (
            625,
            [{"resourceId": battery["id"], "slot": period, "wh": 625}],
        )
    chain = chain_for(api.settings)

    def sweep() -> FlexReport:
        with Session(api.engine) as session:
            return deliver_flex(session, api.settings, chain.now())

    def patches() -> list[VppSchedule]:
        with Session(api.engine) as session:
            return list(
                session.exec(
                    select(VppSchedule)
                    .where(VppSchedule.kind == "patch")
                    .order_by(VppSchedule.created_at)
                ).all()
            )

    def sent_setpoints(patch: VppSchedule) -> list[int]:
        with Session(api.engine) as session:
            command = session.exec(
                select(DispatchCommand).where(
                    DispatchCommand.schedule_id == patch.id, DispatchCommand.kind == "schedule"
                )
            ).one()
            assert command.resource_id == uuid.UUID(battery["id"])
            return command.payload["setpointsW"]

    assert sweep() == FlexReport(patches=0, commands=0)  # nothing traded: the plan stands
    for quantity in (1_450, 2_175):  # 40 %, then the rest
        _, bid = wallet_bid(
            client,
            market["buyer"],
            market["wallet"],
            side="buy",
            product="energy",
            delivery_start=period,
            quantity_wh=quantity,
            price=120_000,
        )
        assert bid.status_code == 202, bid.text
        assert len(match(api)) == 1
        catch_up(market["indexer"])
        assert sweep().patches == 1
        assert sweep().patches == 0  # the fill is delivered: nothing new
    first, second = patches()
    assert (first.parent_id, second.parent_id) == (uuid.UUID(schedule_id),) * 2
    # ⌊625 x 1,450 / 3,625⌋ = 250 Wh, then all 625 Wh: 1 kW, then 2.5 kW in the quarter hour
    assert first.inputs["extraWh"] == {battery["id"]: {str(period): 250}}
    assert second.inputs["extraWh"] == {battery["id"]: {str(period): 625}}
    assert sent_setpoints(first) == [1_000] + [0] * 95
    assert sent_setpoints(second) == [2_500] + [0] * 95
    # the dashboard's timeline: the plan's (idle) setpoints plus the patched discharge
    shown = client.get(f"/v1/vpp/{vpp_id}/timeline", headers=seller).json()
    assert shown["scheduleId"] == schedule_id
    assert [s["scheduledWh"] for s in shown["slots"][:2]] == [625, 0]
    with Session(api.engine) as session:
        assert session.exec(select(VppOrder)).one().patched_fill_wh == 3_625
        # a re-plan the devices now follow (it reserves the 625 Wh but does not schedule
        # them) is patched on the next sweep
        plan = session.get(VppSchedule, uuid.UUID(schedule_id))
        replan = VppSchedule(**plan.model_dump(exclude={"id", "created_at"}), created_at=utc_now())
        session.add(replan)
        session.commit()
        replan_id = replan.id
    assert sweep().patches == 1
    third = patches()[-1]
    assert (third.parent_id, third.inputs["extraWh"]) == (replan_id, second.inputs["extraWh"])
    assert sent_setpoints(third) == [2_500] + [0] * 95
    with Session(api.engine) as session:
        # a later run plans from the latest plan, not its patch
        latest = client.post(
            f"/v1/vpp/{vpp_id}/orders", json={"dryRun": True, "flexShare": 1.0}, headers=seller
        ).json()
        assert latest["scheduleId"] == str(replan_id)
    # a real re-plan reserves the committed 625 Wh: the battery (empty, as it never reported)
    # charges enough in the slot to discharge them on top, and keeps 2.5 kW of power free
    optimized = client.post(
        f"/v1/vpp/{vpp_id}/optimize",
        json={
            "start": datetime.fromtimestamp(period, UTC).isoformat(),
            "buyPrice": [100_000] * 96,
            "sellPrice": [90_000] * 96,
        },
        headers=seller,
    )
    assert optimized.status_code == 200, optimized.text
    allocation = optimized.json()["allocation"][0]
    assert allocation["socWh"][0] >= 625 / 0.95 - 1
    assert allocation["setpointsW"][0] <= 5_000 - 2_500
    with Session(api.engine) as session:
        stored = session.get(VppSchedule, uuid.UUID(optimized.json()["scheduleId"]))
        assert stored.inputs["reservedWh"] == {battery["id"]: {str(period): 625}}

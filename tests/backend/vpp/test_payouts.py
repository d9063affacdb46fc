"""End to end on Anvil: a VPP sells from its meter, its members' meters deliver, the trade
settles on the members' summed verified export, and the payout and penalty go back to the
members pro rata (largest remainder), summing exactly to what the chain paid."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from backend.accounts.models import Account
from backend.market.orders import SELL, Order, default_meter_id, order_digest, sign_order
from backend.resources.models import TelemetrySample
from backend.settlement.models import Reconciliation
from backend.settlement.services import close_due_periods
from backend.vpp import downlink
from backend.vpp.delivery import vpp_meter_id
from backend.vpp.dispatcher import Dispatcher
from backend.vpp.flex_delivery import deliver_flex
from backend.vpp.models import VppMembership, VppSchedule
from backend.vpp.order_plan import PlanInputs, plan_orders, schedule_headroom
from backend.vpp.payouts import allocate_settled, list_allocations
from backend.vpp.schemas import VppCreate
from backend.vpp.services import create_vpp, join
from backend.vpp.simulated_device import SimulatedDevice
from backend.vpp.trading import batteries_of
from backend.vpp.trading_models import VppAllocation, VppOrder
from backend.vpp.trading_schemas import VppOrderPlan
from indexer.models import Trade
from tests.fixtures.mqtt import wait_until
from tests.fixtures.resources import WALL, add_pv, add_resource
from tests.fixtures.services import require_service
from tests.fixtures.vpp import stored_schedule

SLOT = 900
PRICE = 123_457  # per kWh: shares with remainders
ROOT = f"energy-cloud-flex-{uuid.uuid4().hex[:8]}"  # this module's MQTT topics


def account_of(session, person) -> Account:
    return session.exec(select(Account).where(Account.address == person.address.lower())).one()


def vpp_sale(
    market,
    aggregator_key,
    buyer,
    *,
    vpp_id,
    meter: str,
    slot: int,
    wh: int,
    price: int,
    plan: VppOrderPlan | None = None,
):
    """The aggregator's offer of `wh` on the VPP's meter, filled by `buyer`, linked to the VPP
    as `trade_vpp` links the orders it places (with the headroom `plan` relies on)."""
    workload = market.devnet.workload
    offer = Order(
        maker=aggregator_key.address,
        side=SELL,
        product=0,
        assetId=0,
        meterId=bytes.fromhex(meter[2:]),
        quantityWh=wh,
        price=price,
        deliveryStart=slot,
        deliveryEnd=slot + SLOT,
        expiry=workload.now() + 600,
        nonce=workload.c.market.functions.nonces(aggregator_key.address).call(),
        salt=slot,
    )
    market_address = workload.c.market.address
    signature = sign_order(offer, aggregator_key.key, workload.chain_id, market_address)
    workload.tx(
        buyer,
        workload.c.market.functions.fillOrder(
            offer.as_tuple(), signature, wh, default_meter_id(buyer.address)
        ),
    )
    with market.session() as session:
        session.add(
            VppOrder(
                vpp_id=vpp_id,
                order_hash="0x" + order_digest(offer, workload.chain_id, market_address).hex(),
                side="sell",
                meter_id=meter,
                delivery_start=slot,
                quantity_wh=wh,
                price=price,
                forecast_wh=plan.forecastWh if plan else wh,
                flexibility_wh=plan.flexibilityWh if plan else 0,
                flex_wh=plan.flexWh if plan else 0,
                flex_split=[p.model_dump() for p in plan.flexSplit] if plan else [],
            )
        )
        session.commit()


def test_vpp_trade_settles_on_member_meters_and_allocations_sum_to_the_payout(market):
    workload = market.devnet.workload
    aggregator_key, sunny, cloudy, idle_key = workload.people  # idle: also the buyer
    slot = (workload.now() // SLOT + 2) * SLOT
    with market.session() as session:
        aggregator = account_of(session, aggregator_key)
        aggregator.roles = ["aggregator"]
        vpp = create_vpp(session, aggregator, VppCreate(name="Neighbourhood VPP"))
        members = {}
        for person in (sunny, cloudy, idle_key):
            owner = account_of(session, person)
            meter = f"meter:{person.address}"
            pv = add_pv(session, owner, meter=meter, grid_area="DE-50HZ")
            battery = add_resource(session, owner, meter=meter, grid_area="DE-50HZ")
            for resource in (pv, battery):  # two resources behind one meter count it once
                membership = join(session, WALL, owner, vpp.id, resource.id)
                membership.joined_at = datetime.fromtimestamp(slot - 86_400, UTC)
            members[person.address] = (owner.id, pv.id)
        meter = vpp_meter_id(aggregator, vpp.id)
        vpp_id, aggregator_id = vpp.id, aggregator.id
        session.commit()

    # the aggregator's offer on the VPP's meter, taken by a household
    vpp_sale(
        market,
        aggregator_key,
        idle_key,
        vpp_id=vpp_id,
        meter=meter,
        slot=slot,
        wh=4_000,
        price=PRICE,
    )
    with market.session() as session:
        # the idle member's device claims a lot over telemetry: it moves no money
        idle_pv = members[idle_key.address][1]
        session.add(TelemetrySample(resource_id=idle_pv, metric="output", at=slot, value=9_000))
        session.commit()
    market.catch_up()

    workload.advance(slot + SLOT + 120 - workload.now())
    sunny_meter = "0x" + default_meter_id(sunny.address).hex()
    cloudy_meter = "0x" + default_meter_id(cloudy.address).hex()
    idle_meter = "0x" + default_meter_id(idle_key.address).hex()
    market.meter_readings({(sunny_meter, slot): 1_801, (cloudy_meter, slot): 1_199})
    posted = market.meter_readings({(idle_meter, slot): 2_500}, by="owner")  # self-reported
    assert (posted.accepted, posted.verified) == (1, 0), posted

    with market.session() as session:
        reports = close_due_periods(session, market.ctx, market.locks, market.settings)
        assert sum(r.settled for r in reports) == 1
        record = session.exec(select(Reconciliation)).one()
        assert (record.seller_meter, record.metered_wh, record.delivered_wh) == (
            meter,
            3_000,
            3_000,
        )
        assert record.unverified_slots == 1  # the idle member's owner-posted reading
    market.catch_up()

    with market.session() as session:
        trade = session.exec(select(Trade)).one()
        assert trade.status == "settled"
        # 3,000 of 4,000 Wh at 123,457/kWh: gross ceil(370,371); 800 Wh beyond the 5 %
        # tolerance at 20 %: floor(floor(800 x 123,457 / 1000) x 0.2) = 19,753
        assert (trade.seller_payout, trade.penalty) == (370_371, 19_753)
        assert allocate_settled(session) == 1
        assert allocate_settled(session) == 0  # idempotent
        rows = {
            r.meter_id: r
            for r in session.exec(
                select(VppAllocation).where(VppAllocation.trade_id == trade.trade_id)
            ).all()
        }
        # 370,371 x 1,801/3,000 = 222,346.06 and x 1,199/3,000 = 148,024.94: the spare unit
        # goes to the larger remainder; 19,753 -> 11,858.40 and 7,894.60 likewise
        assert {m: (r.delivered_wh, r.payout, r.penalty) for m, r in rows.items()} == {
            sunny_meter: (1_801, 222_346, 11_858),
            cloudy_meter: (1_199, 148_025, 7_895),
        }
        assert sum(r.payout for r in rows.values()) == trade.seller_payout
        assert sum(r.penalty for r in rows.values()) == trade.penalty
        assert idle_meter not in rows  # no verified delivery: nothing
        assert rows[sunny_meter].account_id == members[sunny.address][0]
        assert rows[sunny_meter].settled_tx == trade.closed_tx

        # the aggregator sees every row, a member only its own
        aggregator = session.get(Account, aggregator_id)
        assert len(list_allocations(session, aggregator, vpp_id)) == 2
        own = list_allocations(session, session.get(Account, members[cloudy.address][0]), vpp_id)
        assert [(a.meterId, a.payout, a.aggregator) for a in own] == [
            (cloudy_meter, 148_025, False)
        ]
        idle = session.get(Account, members[idle_key.address][0])
        assert list_allocations(session, idle, vpp_id) == []
        assert session.exec(select(VppMembership)).all()


def test_penalty_with_no_verified_delivery_stays_with_the_aggregator(market):
    workload = market.devnet.workload
    aggregator_key, member_key, _, buyer = workload.people
    slot = (workload.now() // SLOT + 2) * SLOT
    with market.session() as session:
        aggregator = account_of(session, aggregator_key)
        aggregator.roles = ["aggregator"]
        vpp = create_vpp(session, aggregator, VppCreate(name="Quiet VPP"))
        owner = account_of(session, member_key)
        pv = add_pv(session, owner, meter=f"meter:{member_key.address}", grid_area="DE-50HZ")
        join(session, WALL, owner, vpp.id, pv.id).joined_at = datetime.fromtimestamp(
            slot - 900, UTC
        )
        meter = vpp_meter_id(aggregator, vpp.id)
        vpp_id, aggregator_id = vpp.id, aggregator.id
        session.commit()
    vpp_sale(
        market,
        aggregator_key,
        buyer,
        vpp_id=vpp_id,
        meter=meter,
        slot=slot,
        wh=2_000,
        price=100_000,
    )
    market.catch_up()
    workload.advance(slot + SLOT + 120 - workload.now())
    member_meter = "0x" + default_meter_id(member_key.address).hex()
    market.meter_readings({(member_meter, slot): 0})
    with market.session() as session:
        reports = close_due_periods(session, market.ctx, market.locks, market.settings)
        assert sum(r.settled for r in reports) == 1
    market.catch_up()
    with market.session() as session:
        trade = session.exec(select(Trade)).one()
        assert (trade.seller_payout, trade.penalty) == (0, 38_000)  # 1,900 Wh x 0.1 x 20 %
        assert allocate_settled(session) == 1
        rows = session.exec(select(VppAllocation)).all()
        assert [(r.meter_id, r.payout, r.penalty) for r in rows] == [(meter, 0, 38_000)]
        assert rows[0].account_id == aggregator_id


@pytest.mark.mqtt
def test_a_sale_relying_on_battery_headroom_is_patched_down_delivered_and_paid_in_full(market):
    """The order sells the PV surplus and half the battery's headroom beyond its schedule; once
    it fills, the patch goes down to the battery over Mosquitto, the battery discharges the
    extra, and the member meter's verified export covers every Wh sold: paid, no penalty."""
    require_service("Mosquitto", "mqtt://127.0.0.1:1883", "GRIDLEDGER_MQTT_HOST")
    workload = market.devnet.workload
    aggregator_key, member_key, _, buyer = workload.people
    slot = (workload.now() // SLOT + 2) * SLOT
    settings = market.settings.model_copy(update={"mqtt_topic_root": ROOT})
    with market.session() as session:
        aggregator = account_of(session, aggregator_key)
        aggregator.roles = ["aggregator"]
        vpp = create_vpp(session, aggregator, VppCreate(name="Flexible VPP"))
        owner = account_of(session, member_key)
        home = f"meter:{member_key.address}"
        pv = add_pv(session, owner, meter=home, grid_area="DE-50HZ")
        battery = add_resource(session, owner, meter=home, grid_area="DE-50HZ")
        for resource in (pv, battery):
            join(session, WALL, owner, vpp.id, resource.id).joined_at = datetime.fromtimestamp(
                slot - 86_400, UTC
            )
        # the day's plan: the battery idles, full
        plan = stored_schedule(session, vpp, [(battery, [0] * 96)], slot, soc_wh=[13_500] * 96)
        (order,) = plan_orders(
            PlanInputs(
                forecast_start=slot,
                forecast_wh=[1_000],  # the PV's surplus
                headroom=schedule_headroom(plan, batteries_of(session, plan)),
                sell_price={},
                buy_price={},
                now=workload.now(),
                traded=set(),
                min_wh=100,
                flex_share=0.5,
                default_price=PRICE,
            )
        )
        meter = vpp_meter_id(aggregator, vpp.id)
        vpp_id, battery_id = vpp.id, battery.id
        downlink.queue_schedule(session, settings, plan)
        session.commit()
        device = SimulatedDevice.for_resource(settings, battery)
    # 5 kW spare for a quarter hour: 1,250 Wh of headroom, half of it sold with the surplus
    assert (order.quantityWh, order.flexWh) == (1_625, 625)
    vpp_sale(
        market,
        aggregator_key,
        buyer,
        vpp_id=vpp_id,
        meter=meter,
        slot=slot,
        wh=1_625,
        price=PRICE,
        plan=order,
    )
    market.catch_up()
    dispatcher = Dispatcher(settings=settings, client_id=f"gl-flex-{uuid.uuid4().hex[:8]}")
    device.soc_wh = 13_500
    try:
        device.start()
        dispatcher.start()
        assert wait_until(dispatcher.client.is_connected, 10)
        dispatcher.round()  # the plan (and the battery's configuration)
        assert device.wait_for_commands(2)
        assert device.target_w(slot) == 0  # the plan alone: the battery would idle
        with market.session() as session:
            report = deliver_flex(session, settings, workload.now())
        assert report.patches == 1
        dispatcher.round()
        assert device.wait_for_commands(3)
        device.last_report = slot - 1
        power = device.report(slot + SLOT - 1)
    finally:
        dispatcher.client.loop_stop()
        dispatcher.client.disconnect()
        dispatcher.engine.dispose()
        device.stop()
    battery_wh = power * SLOT // 3_600
    assert (power, battery_wh) == (2_500, 625)  # the patch: 625 Wh on top of the plan

    workload.advance(slot + SLOT + 120 - workload.now())
    home_meter = "0x" + default_meter_id(member_key.address).hex()
    market.meter_readings({(home_meter, slot): 1_000 + battery_wh})  # PV and battery export
    with market.session() as session:
        reports = close_due_periods(session, market.ctx, market.locks, market.settings)
        assert sum(r.settled for r in reports) == 1
        record = session.exec(select(Reconciliation)).one()
        assert (record.metered_wh, record.delivered_wh) == (1_625, 1_625)
        patch = session.exec(select(VppSchedule).where(VppSchedule.kind == "patch")).one()
        assert patch.inputs["extraWh"] == {str(battery_id): {str(slot): 625}}
    market.catch_up()
    with market.session() as session:
        trade = session.exec(select(Trade)).one()
        # every Wh sold was delivered: ceil(1,625 x 123,457 / 1000) paid, nothing penalised
        assert (trade.status, trade.seller_payout, trade.penalty) == ("settled", 200_618, 0)

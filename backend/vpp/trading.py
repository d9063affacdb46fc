"""Aggregator trading: a VPP's forecast surplus and shortfall, and the flexibility its
schedule leaves in its batteries, become market orders its aggregator signs.

Plan, per 15-minute slot of the VPP's forecast (stored by backend/forecast: the members'
summed net output, Wh, + feeds the grid) that is still open for trading (starts after chain
time) and not yet traded by this VPP on that side:

    flexibility = Σ batteries of the schedule: min(max_discharge_w·¼ h − planned discharge,
                                                   (planned SoC − min SoC)·η_discharge), ≥ 0
    counted     = ⌊flex_share · flexibility⌋
    forecast > 0 (surplus):   sell  forecast + counted
    forecast < 0 (shortfall): buy   max(−forecast − counted, 0)   (the batteries cover counted)

Flexibility is sequential (backend/vpp/order_plan.py `Headroom`): what an order relies on is
committed per battery and slot (`vpp_orders.flex_split`) and no longer available to later
slots' or later runs' orders. When the order fills, backend/vpp/flex_delivery.py sends the
batteries a patch of their schedule that discharges the filled share.

`flex_share` (the request's `flexShare`, else `vpp_trading_flex_share`) is the share of the
headroom beyond the schedule that the orders rely on, the same on both sides: sold on top of a
surplus, or discharged instead of buying part of a shortfall; the rest stays in reserve. With 0
the orders trade the forecast alone (a shortfall is bought whole: nothing is promised from
storage beyond what the schedule sends the batteries), with 1 all of the headroom. Rounding down
keeps both sides from relying on more than the share.

Quantities below `vpp_trading_min_wh` are not traded. `blockSlots` > 1 nets each aligned block
of quarter hours (4: the hour) into one order for the block's delivery period, for markets that
trade longer periods. Prices: the request's, else the
schedule's sell/buy price of the slot, else `vpp_trading_default_price`. Without a schedule
covering the slot, flexibility is zero (nothing is promised from storage the optimiser has not
planned). Every order sells or buys from the VPP's trading meter (backend/vpp/delivery.py) and
goes through order intake like any order: a custodial aggregator's orders are signed with its
key; a wallet aggregator gets `wallet-must-sign` with the terms to sign. One order per VPP,
slot and side: a later forecast does not trade a slot again (a stored order of the aggregator
on the VPP's meter counts, whatever its state).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from backend.accounts.models import Account, AccountKind
from backend.chain.contracts import Chain
from backend.chain.wallet_calls import WalletMustSign
from backend.core.config import Settings
from backend.core.errors import GridLedgerError, NotFound
from backend.forecast.models import StoredForecast, TargetKind
from backend.market import intake
from backend.market import orders as eip712
from backend.market.errors import DuplicateOrder
from backend.market.models import SignedOrder
from backend.market.schemas import OrderCreate
from backend.resources.models import DerResource, ResourceKind
from backend.vpp.delivery import vpp_meter_id
from backend.vpp.flex_delivery import committed_flex
from backend.vpp.models import ScheduleKind, Vpp, VppSchedule
from backend.vpp.order_plan import (
    Battery,
    PlanInputs,
    plan_orders,
    schedule_headroom,
    schedule_prices,
)
from backend.vpp.services import run_by
from backend.vpp.trading_models import VppOrder
from backend.vpp.trading_schemas import (
    PlannedStatus,
    VppOrderPlan,
    VppOrdersRequest,
    VppOrdersResult,
)

SLOT = eip712.SLOT_SECONDS


class NoForecast(NotFound):
    code = "vpp-forecast-not-found"
    title = "The VPP has no stored forecast to trade on"


class VppOrdersMustBeSigned(WalletMustSign):
    """A wallet aggregator signs its VPP's orders itself: `orders` are the terms, each to sign
    from `GET /v1/trading/order-typed-data` and post to `POST /v1/trading/orders`."""

    def __init__(self, detail: str, orders: list[dict[str, Any]]):
        super().__init__(detail)
        self.extensions["orders"] = orders


# ------------------------------------------------------------------------ reading inputs


def latest_forecast(session: Session, vpp: Vpp, forecast_id: uuid.UUID | None) -> StoredForecast:
    query = select(StoredForecast).where(
        StoredForecast.target_kind == TargetKind.VPP.value,
        StoredForecast.target_id == str(vpp.id),
    )
    if forecast_id is not None:
        query = query.where(StoredForecast.id == forecast_id)
    found = session.exec(query.order_by(col(StoredForecast.created_at).desc())).first()
    if found is None:
        raise NoForecast(
            f"VPP {vpp.id} has no stored forecast"
            + (f" {forecast_id}" if forecast_id else ": POST /v1/energy/forecast first"),
            vpp_id=str(vpp.id),
        )
    return found


def latest_schedule(
    session: Session, vpp: Vpp, schedule_id: uuid.UUID | None
) -> VppSchedule | None:
    query = select(VppSchedule).where(
        VppSchedule.vpp_id == vpp.id, VppSchedule.kind == ScheduleKind.PLAN.value
    )
    if schedule_id is not None:
        query = query.where(VppSchedule.id == schedule_id)
    schedule = session.exec(query.order_by(col(VppSchedule.created_at).desc())).first()
    if schedule is None and schedule_id is not None:
        raise NotFound(f"VPP {vpp.id} has no schedule {schedule_id}")
    return schedule


def batteries_of(session: Session, schedule: VppSchedule) -> dict[str, Battery]:
    ids = [uuid.UUID(p["resourceId"]) for p in schedule.result.get("allocation", [])]
    rows = session.exec(select(DerResource).where(col(DerResource.id).in_(ids))).all()
    return {
        str(r.id): Battery(r.max_discharge_w, r.min_soc_wh or 0, r.discharge_efficiency)
        for r in rows
        if r.kind == ResourceKind.BATTERY
    }


def traded_slots(
    session: Session, aggregator: Account, meter: str, since: int
) -> set[tuple[int, str]]:
    """(slot, side) of the aggregator's stored orders on the VPP's meter from `since`."""
    rows = session.exec(
        select(SignedOrder.delivery_start, SignedOrder.side).where(
            SignedOrder.maker == aggregator.address.lower(),
            SignedOrder.meter_id == meter,
            col(SignedOrder.delivery_start) >= since,
        )
    ).all()
    return {(start, "sell" if side == eip712.SELL else "buy") for start, side in rows}


# --------------------------------------------------------------------------- the service


def trade_vpp(
    session: Session,
    settings: Settings,
    chain: Chain,
    account: Account,
    vpp_id: uuid.UUID,
    request: VppOrdersRequest,
) -> VppOrdersResult:
    """Plan the VPP's orders and, unless `dryRun`, place them as `account` (its aggregator)."""
    vpp = run_by(session, account, vpp_id)
    meter = vpp_meter_id(account, vpp.id)
    forecast = latest_forecast(session, vpp, request.forecastId)
    schedule = latest_schedule(session, vpp, request.scheduleId)
    sell, buy = schedule_prices(schedule)
    if request.sellPrice is not None:
        sell = {}
    if request.buyPrice is not None:
        buy = {}
    plans = plan_orders(
        PlanInputs(
            forecast_start=forecast.start,
            forecast_wh=list(forecast.values),
            headroom=(
                schedule_headroom(
                    schedule,
                    batteries_of(session, schedule),
                    committed_flex(session, vpp.id, schedule.start),
                )
                if schedule
                else []
            ),
            sell_price=sell,
            buy_price=buy,
            now=chain.now(),
            traded=traded_slots(session, account, meter, forecast.start),
            min_wh=settings.vpp_trading_min_wh,
            flex_share=(
                settings.vpp_trading_flex_share if request.flexShare is None else request.flexShare
            ),
            default_price=settings.vpp_trading_default_price,
            block_slots=request.blockSlots,
        )
    )
    if request.deliveryBefore is not None:
        plans = [p for p in plans if p.deliveryStart < request.deliveryBefore]
    for plan in plans:
        if plan.side == "sell" and request.sellPrice is not None:
            plan.price = request.sellPrice
        if plan.side == "buy" and request.buyPrice is not None:
            plan.price = request.buyPrice
    result = VppOrdersResult(
        vppId=vpp.id,
        dryRun=request.dryRun,
        meterId=meter,
        forecastId=forecast.id,
        scheduleId=schedule.id if schedule else None,
        orders=plans,
    )
    if request.dryRun or not plans:
        return result
    if account.kind != AccountKind.CUSTODIAL:
        raise VppOrdersMustBeSigned(
            "wallet aggregators sign their VPP's orders: sign each of `orders` "
            "(GET /v1/trading/order-typed-data) and POST it to /v1/trading/orders",
            [terms(plan, meter).model_dump(mode="json", exclude_none=True) for plan in plans],
        )
    for plan in plans:
        place(session, settings, chain, account, vpp, meter, plan, forecast, schedule)
    return result


def terms(plan: VppOrderPlan, meter: str) -> OrderCreate:
    return OrderCreate(
        side=plan.side,
        product="energy",
        delivery_start=plan.deliveryStart,
        delivery_end=plan.deliveryEnd,
        quantity_wh=plan.quantityWh,
        price=plan.price,
        meter_id=meter,
    )


def place(
    session: Session,
    settings: Settings,
    chain: Chain,
    account: Account,
    vpp: Vpp,
    meter: str,
    plan: VppOrderPlan,
    forecast: StoredForecast,
    schedule: VppSchedule | None,
) -> None:
    """Place one planned order through intake and link it to the VPP (`vpp_orders`). The VPP's
    row is locked (PostgreSQL) from the check that the slot is still untraded until intake
    commits the order, so the beat and an API call never both trade a slot; the link follows
    in its own commit (an order whose link a crash lost still counts in `traded_slots`)."""
    session.exec(select(Vpp).where(Vpp.id == vpp.id).with_for_update()).one()
    if (plan.deliveryStart, plan.side) in traded_slots(session, account, meter, plan.deliveryStart):
        session.rollback()
        plan.status, plan.problem = PlannedStatus.REFUSED, DuplicateOrder.code
        return
    try:
        row = intake.place_order(session, settings, chain, account, terms(plan, meter))
    except GridLedgerError as exc:
        session.rollback()
        plan.status, plan.problem = PlannedStatus.REFUSED, exc.code
        return
    session.add(
        VppOrder(
            vpp_id=vpp.id,
            order_hash=row.order_hash,
            forecast_id=forecast.id,
            schedule_id=schedule.id if schedule else None,
            side=plan.side,
            meter_id=meter,
            delivery_start=plan.deliveryStart,
            quantity_wh=plan.quantityWh,
            price=plan.price,
            forecast_wh=plan.forecastWh,
            flexibility_wh=plan.flexibilityWh,
            flex_wh=plan.flexWh,
            flex_split=[part.model_dump() for part in plan.flexSplit],
        )
    )
    session.commit()
    plan.status, plan.orderId = PlannedStatus.PLACED, row.order_hash


@dataclass(frozen=True)
class TradeReport:
    placed: dict[str, int]  # VPP id → orders placed
    skipped: dict[str, str]  # VPP id → why (no forecast, a wallet aggregator, ...)


def trade_all_vpps(session: Session, settings: Settings, chain: Chain) -> TradeReport:
    """The beat's run after the daily forecast and optimisation: every VPP with a forecast
    places its orders on its aggregator's behalf (custodial aggregators only)."""
    placed: dict[str, int] = {}
    skipped: dict[str, str] = {}
    for vpp in session.exec(select(Vpp).where(col(Vpp.dissolved_at).is_(None))).all():
        aggregator = session.get(Account, vpp.aggregator_id)
        if aggregator is None:
            continue
        try:
            result = trade_vpp(session, settings, chain, aggregator, vpp.id, VppOrdersRequest())
        except (NoForecast, WalletMustSign) as exc:
            session.rollback()
            skipped[str(vpp.id)] = exc.code
            continue
        placed[str(vpp.id)] = sum(1 for o in result.orders if o.status == PlannedStatus.PLACED)
    return TradeReport(placed=placed, skipped=skipped)

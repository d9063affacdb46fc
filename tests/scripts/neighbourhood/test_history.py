"""The neighbourhood's backfilled past (scripts/neighbourhood/history.py): a week of readings
signed with each meter's own key, which the ingest verifies and the VPP's demand forecast then
has as history from the first simulated day."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from sqlmodel import select

from backend.forecast import history
from backend.forecast.errors import InsufficientHistory
from backend.forecast.models import Quantity, TargetKind
from backend.meters.models import MeterReading
from backend.meters.services import ingest_readings
from scripts.neighbourhood.history import (
    BACKFILL_S,
    DAY,
    PastMeter,
    community_battery_wh,
    idle,
    signed_days,
    signed_reading,
)
from scripts.neighbourhood.meter_keys import meter_key
from scripts.neighbourhood.profiles import SLOT_SECONDS, Household, PvSystem
from tests.fixtures.meters import NOW, TEST_CHAIN_ID, TEST_REGISTRY, approve

WEEK_SLOTS = 7 * DAY // SLOT_SECONDS


def test_the_community_battery_charges_midday_and_sells_the_same_in_the_evening():
    day = [community_battery_wh(NOW + n * SLOT_SECONDS) for n in range(DAY // SLOT_SECONDS)]
    charged = [n for n, (imported, _) in enumerate(day) if imported]
    sold = [n for n, (_, exported) in enumerate(day) if exported]
    assert (charged[0], charged[-1], len(charged)) == (40, 59, 20)  # 10:00-15:00 UTC
    assert (sold[0], sold[-1], len(sold)) == (68, 87, 20)  # 17:00-22:00 UTC
    assert sum(i for i, _ in day) == sum(e for _, e in day) == 30_000


def test_a_backfilled_week_gives_the_vpp_demand_forecast_its_history(metered, meter_settings):
    session, _owner, _other, solar, house = metered
    solar_key, house_key = meter_key(7, "prosumer00-meter"), meter_key(7, "prosumer00-storage")
    approve(session, solar, solar_key)
    approve(session, house, house_key)
    pv, home = PvSystem(peak_w=5_000), Household("prosumer00", annual_kwh=4_000)

    def prosumer_wh(slot: int) -> tuple[int, int]:
        net = pv.generation_wh(slot, seed=7, household="prosumer00") - home.consumption_wh(
            slot, seed=7
        )
        return max(-net, 0), max(net, 0)

    meters = [
        PastMeter(solar.meter_id, solar_key, prosumer_wh),
        PastMeter(house.meter_id, house_key, idle),
    ]
    target = history.Target(
        TargetKind.VPP_DEMAND,
        "vpp",
        Quantity.CONSUMPTION_WH,
        meter_ids=(solar.meter_id, house.meter_id),
    )
    since = NOW - WEEK_SLOTS * SLOT_SECONDS  # the forecast's default 672 h look back, in part

    def demand() -> np.ndarray:
        return history.load(session, target, start=since, slots=WEEK_SLOTS)

    with pytest.raises(InsufficientHistory):
        history.usable(demand())  # the first simulated day, before this change
    sign = partial(signed_reading, chain_id=TEST_CHAIN_ID, registry=TEST_REGISTRY)
    days = list(signed_days(meters, NOW - BACKFILL_S, NOW, sign))
    assert [len(day) for day in days] == [2 * DAY // SLOT_SECONDS] * 8
    for day in days:
        result = ingest_readings(session, day, source="rest", now=NOW, settings=meter_settings)
        assert (result.verified, result.rejected) == (len(day), 0)
    signers = set(session.exec(select(MeterReading.signer).distinct()).all())
    assert signers == {solar_key.address, house_key.address}  # each meter its own key
    skipped, series = history.usable(demand())
    assert skipped == 0 and len(series) == WEEK_SLOTS
    expected = [prosumer_wh(since + n * SLOT_SECONDS)[0] for n in range(WEEK_SLOTS)]
    assert series.tolist() == expected  # what the home imported: its load beyond its PV

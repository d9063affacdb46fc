"""The simulated device's behaviour without a broker: what it outputs for its schedule and
setpoint, within its limits and state of charge, and which slots it ignores."""

from __future__ import annotations

import uuid

from backend.core.config import Settings
from backend.vpp.simulated_device import SimulatedDevice

START = 1_796_126_400


def device(**options) -> SimulatedDevice:
    base = {
        "settings": Settings(_env_file=None),
        "resource_id": uuid.UUID(int=1),
        "topic_prefix": "energy-cloud/KR-SE-001/battery/x",
        "max_charge_w": 5_000,
        "max_discharge_w": 5_000,
        "energy_capacity_wh": 10_000,
        "soc_wh": 1_000,
    }
    return SimulatedDevice(**(base | options))


def test_it_follows_the_schedule_then_a_setpoint_within_its_limits():
    battery = device()
    battery.apply(
        {
            "type": "schedule",
            "start": "2026-12-01T12:00:00Z",
            "slotSeconds": 900,
            "setpointsW": [3_000, -9_000],
        }
    )
    assert [battery.target_w(START + 10), battery.target_w(START + 900)] == [3_000, -9_000]
    assert battery.output_w(START + 900) == -5_000  # the charge limit
    assert battery.target_w(START - 1) == 0 == battery.target_w(START + 1_800)  # outside it
    battery.apply({"type": "setpoint", "powerW": 1_234, "until": "2026-12-01T12:05:00Z"})
    assert battery.target_w(START + 10) == 1_234 and battery.target_w(START + 300) == 3_000
    battery.apply({"type": "config", "maxChargeW": 1_000, "maxDischargeW": 2_000})
    assert battery.output_w(START + 10) == 1_234 and battery.output_w(START + 900) == -1_000


def test_the_state_of_charge_bounds_the_output():
    battery = device(soc_wh=500)
    battery.apply(
        {
            "type": "schedule",
            "start": "2026-12-01T12:00:00Z",
            "slotSeconds": 900,
            "setpointsW": [5_000] * 8,
        }
    )
    battery.last_report = START
    # 500 Wh left: over the next hour it can give 500 W at most
    assert battery.output_w(START + 3_600) == 500


def test_a_reluctant_device_ignores_the_same_slots_every_time():
    stubborn = device(follow_probability=0.5, seed=3)
    stubborn.apply(
        {
            "type": "schedule",
            "start": "2026-12-01T12:00:00Z",
            "slotSeconds": 900,
            "setpointsW": [2_000] * 96,
        }
    )
    followed = [stubborn.follows(START + i * 900) for i in range(96)]
    assert 20 < sum(followed) < 76  # about half
    assert followed == [stubborn.follows(START + i * 900) for i in range(96)]
    outputs = {stubborn.target_w(START + i * 900 + 5) for i in range(96)}
    assert outputs == {0, 2_000}
    assert all(device(follow_probability=0.0).follows(START + i * 900) is False for i in range(4))


def test_tomorrows_schedule_does_not_end_todays():
    battery = device()
    today = {"type": "schedule", "slotSeconds": 900, "setpointsW": [1_000] * 96}
    battery.apply({**today, "start": "2026-12-01T12:00:00Z"})
    battery.apply({**today, "start": "2026-12-02T12:00:00Z", "setpointsW": [-2_000] * 96})
    assert battery.target_w(START + 3_600) == 1_000  # today's plan still runs today
    assert battery.target_w(START + 86_400 + 10) == -2_000  # tomorrow's from tomorrow on
    battery.apply({**today, "start": "2026-12-01T18:00:00Z", "setpointsW": [0] * 4})
    assert battery.target_w(START + 6 * 3_600) == 0  # a newer re-plan overrides where it covers
    assert battery.target_w(START + 7 * 3_600) == 1_000

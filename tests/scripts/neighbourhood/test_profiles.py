"""Profiles are physical: no sun at night, a midday peak, plausible daily totals, reproducible."""

from scripts.neighbourhood.profiles import Household, PvSystem, slots

DAY = 86_400
JUNE_21 = 20_625 * DAY  # 2026-06-21 00:00 UTC


def day_slots(midnight: int):
    return list(slots(midnight, midnight + DAY))


def test_pv_is_zero_at_night_and_peaks_around_noon():
    pv = PvSystem(peak_w=5_000)
    values = [pv.generation_wh(s, seed=1, household="h1") for s in day_slots(JUNE_21)]
    assert len(values) == 96 and all(isinstance(v, int) and v >= 0 for v in values)
    assert values[0] == values[95] == 0  # midnight
    peak_slot = max(range(96), key=values.__getitem__)
    assert 40 <= peak_slot <= 56  # 10:00-14:00 UTC at longitude 0
    assert max(values) <= 5_000 * 900 // 3600  # never above nameplate × 15 minutes


def test_pv_daily_yield_is_plausible_and_seeded():
    pv = PvSystem(peak_w=4_000)
    day = [pv.generation_wh(s, seed=7, household="h2") for s in day_slots(JUNE_21)]
    assert 4_000 <= sum(day) <= 4_000 * 7  # 1 to 7 kWh per kWp on a June day
    assert day == [pv.generation_wh(s, seed=7, household="h2") for s in day_slots(JUNE_21)]
    assert day != [pv.generation_wh(s, seed=8, household="h2") for s in day_slots(JUNE_21)]


def test_household_load_has_evening_peak_and_plausible_total():
    home = Household("h3", annual_kwh=3_650)
    day = [home.consumption_wh(s, seed=3) for s in day_slots(JUNE_21)]
    assert all(v > 0 for v in day)
    assert 5_000 <= sum(day) <= 20_000  # around 10 kWh a day
    evening = sum(day[72:84])  # 18:00-21:00
    night = sum(day[8:20])  # 02:00-05:00
    assert evening > 1.5 * night


def test_slots_are_aligned_to_the_hour_grid():
    assert list(slots(JUNE_21 + 100, JUNE_21 + 3_600)) == [
        JUNE_21,
        JUNE_21 + 900,
        JUNE_21 + 1_800,
        JUNE_21 + 2_700,
    ]

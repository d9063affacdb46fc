"""The simulated weather provider: deterministic per seed and place, consistent across
overlapping ranges, physically sensible, and in Open-Meteo's shape."""

from __future__ import annotations

import numpy as np
import pytest

from backend.forecast.errors import WeatherUnavailable
from backend.forecast.weather import SimulatedWeather, parse_open_meteo, provider_from_settings

SEOUL = {"lat": 37.5665, "lng": 126.978}
DAY0 = 1_767_225_600  # 2026-01-01T00:00Z


def test_same_seed_and_place_give_the_same_hours_whatever_the_range():
    provider = SimulatedWeather(seed=3)
    week = provider.hourly(**SEOUL, start=DAY0, end=DAY0 + 7 * 86_400)
    later = provider.hourly(**SEOUL, start=DAY0 + 2 * 86_400, end=DAY0 + 3 * 86_400)
    assert len(week.time) == 168 and len(later.time) == 24
    np.testing.assert_array_equal(week.temperature_c[48:72], later.temperature_c)
    np.testing.assert_array_equal(week.irradiance_w_m2[48:72], later.irradiance_w_m2)
    other = SimulatedWeather(seed=4).hourly(**SEOUL, start=DAY0, end=DAY0 + 7 * 86_400)
    assert not np.array_equal(week.temperature_c, other.temperature_c)


def test_the_sun_shines_by_day_only_and_clouds_dim_it():
    provider = SimulatedWeather(seed=1)
    year = provider.hourly(**SEOUL, start=DAY0, end=DAY0 + 60 * 86_400)
    local_hour = ((year.time % 86_400) / 3600 + 9) % 24  # Seoul is UTC+9
    night = (local_hour < 5) | (local_hour > 20)
    assert np.all(year.irradiance_w_m2[night] == 0)
    assert year.irradiance_w_m2.max() > 300
    assert year.cloud_cover_pct.min() >= 0 and year.cloud_cover_pct.max() <= 100
    noon = local_hour == 12
    cloudy = year.cloud_cover_pct[noon] > 80
    clear = year.cloud_cover_pct[noon] < 20
    assert cloudy.any() and clear.any()
    assert year.irradiance_w_m2[noon][cloudy].mean() < year.irradiance_w_m2[noon][clear].mean()
    assert year.temperature_c.min() > -25 and year.temperature_c.max() < 20  # a Seoul winter


def test_responses_have_open_meteos_shape_and_parse_back():
    body = SimulatedWeather().open_meteo(**SEOUL, start=DAY0 + 1_800, end=DAY0 + 3 * 3600)
    assert set(body["hourly"]) == {"time", "temperature_2m", "cloud_cover", "shortwave_radiation"}
    assert body["hourly"]["time"] == [DAY0, DAY0 + 3600, DAY0 + 7200]
    assert body["hourly_units"]["shortwave_radiation"] == "W/m²"
    parsed = parse_open_meteo(body)
    assert parsed.temperature_c.tolist() == body["hourly"]["temperature_2m"]
    with pytest.raises(WeatherUnavailable):
        parse_open_meteo({"hourly": {"time": [DAY0]}})


def test_unknown_providers_and_empty_ranges_are_refused():
    with pytest.raises(WeatherUnavailable):
        provider_from_settings("open-meteo", 0)
    with pytest.raises(WeatherUnavailable):
        SimulatedWeather().hourly(**SEOUL, start=DAY0, end=DAY0)

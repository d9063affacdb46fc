"""Weather features for the forecaster, behind a pluggable provider.

A provider answers hourly weather for a point and a time range (unix s, UTC, whole hours):
air temperature (°C), cloud cover (%) and global horizontal irradiance (W/m²). The built-in
`SimulatedWeather` speaks the shape of a real weather API (Open-Meteo's `/v1/forecast`
JSON: `hourly.time`, `hourly.temperature_2m`, `hourly.cloud_cover`,
`hourly.shortwave_radiation`) and `parse_open_meteo` reads that shape, so a provider calling
the real service only has to fetch the JSON. The simulation is deterministic per seed and
place: the same hour asked twice, or inside two different ranges, gets the same values.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from backend.forecast.errors import WeatherUnavailable

HOUR = 3600
DAY = 86_400


@dataclass(frozen=True)
class HourlyWeather:
    """Hourly weather at one point; every array is as long as `time` (unix s, hour starts)."""

    time: np.ndarray
    temperature_c: np.ndarray
    cloud_cover_pct: np.ndarray
    irradiance_w_m2: np.ndarray

    def at(self, timestamps: np.ndarray) -> dict[str, np.ndarray]:
        """The features at arbitrary instants (linear interpolation between hours)."""
        return {
            "temperature_c": np.interp(timestamps, self.time, self.temperature_c),
            "cloud_cover_pct": np.interp(timestamps, self.time, self.cloud_cover_pct),
            "irradiance_w_m2": np.interp(timestamps, self.time, self.irradiance_w_m2),
        }


class WeatherProvider(Protocol):
    """Where weather comes from (GRIDLEDGER_FORECAST_WEATHER_PROVIDER)."""

    name: str

    def hourly(self, *, lat: float, lng: float, start: int, end: int) -> HourlyWeather:
        """Hours from `start` (inclusive) to `end` (exclusive), both unix s."""
        ...


def parse_open_meteo(body: dict[str, Any]) -> HourlyWeather:
    """Read an Open-Meteo `/v1/forecast` response (`timeformat=unixtime`)."""
    try:
        hourly = body["hourly"]
        return HourlyWeather(
            time=np.asarray(hourly["time"], dtype=np.int64),
            temperature_c=np.asarray(hourly["temperature_2m"], dtype=float),
            cloud_cover_pct=np.asarray(hourly["cloud_cover"], dtype=float),
            irradiance_w_m2=np.asarray(hourly["shortwave_radiation"], dtype=float),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WeatherUnavailable(f"unreadable weather response: {exc}") from exc


def solar_elevation_sin(lat: float, lng: float, timestamps: np.ndarray) -> np.ndarray:
    """sin(solar elevation) at each unix second (declination and hour angle; ±1° is plenty)."""
    days = timestamps / DAY
    day_of_year = (days % 365.25) + 1
    declination = np.radians(23.44) * np.sin(2 * np.pi * (284 + day_of_year) / 365)
    solar_hours = (timestamps % DAY) / HOUR + lng / 15.0
    hour_angle = np.radians(15.0 * (solar_hours - 12.0))
    phi = math.radians(lat)
    return np.sin(phi) * np.sin(declination) + np.cos(phi) * np.cos(declination) * np.cos(
        hour_angle
    )


class SimulatedWeather:
    """A deterministic stand-in for a weather API: seasonal and diurnal temperature with
    day-to-day swings, cloud cover drifting per day, and clear-sky irradiance dimmed by cloud
    (Kasten-Czeplak). The place enters through latitude (sun, climate) and a per-place seed."""

    name = "simulated"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def _day_noise(self, lat: float, lng: float, days: np.ndarray, stream: str) -> np.ndarray:
        """One standard-normal draw per (seed, place, day, stream), stable across calls."""
        out = np.empty(len(days))
        for i, day in enumerate(days):
            key = f"{self.seed}:{round(lat, 2)}:{round(lng, 2)}:{int(day)}:{stream}"
            digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
            out[i] = np.random.default_rng(int.from_bytes(digest, "big")).standard_normal()
        return out

    def _daily(self, lat: float, lng: float, timestamps: np.ndarray, stream: str) -> np.ndarray:
        """A smooth daily signal: noise per day, interpolated between midday points."""
        first, last = int(timestamps.min() // DAY) - 1, int(timestamps.max() // DAY) + 2
        days = np.arange(first, last)
        return np.interp(timestamps, days * DAY + DAY / 2, self._day_noise(lat, lng, days, stream))

    def open_meteo(self, *, lat: float, lng: float, start: int, end: int) -> dict[str, Any]:
        """The response a real API would give, in Open-Meteo's JSON shape."""
        if end <= start:
            raise WeatherUnavailable(f"empty range {start}..{end}")
        first = start // HOUR * HOUR
        times = np.arange(first, end, HOUR, dtype=np.int64)
        t = times.astype(float)
        season = np.cos(2 * np.pi * ((t / DAY) % 365.25 - 196) / 365.25)  # 1 mid-July
        hemisphere = 1.0 if lat >= 0 else -1.0
        local_hour = ((t % DAY) / HOUR + lng / 15.0) % 24
        diurnal = np.cos(2 * np.pi * (local_hour - 15) / 24)  # warmest at 15:00
        mean = 16 - 0.25 * max(abs(lat) - 30, 0)
        temperature = (
            mean
            + 11 * hemisphere * season
            + 4.5 * diurnal
            + 3.5 * self._daily(lat, lng, t, "temperature")
        )
        cloud = 100 / (1 + np.exp(-1.6 * self._daily(lat, lng, t, "cloud") - 0.2))
        elevation = np.clip(solar_elevation_sin(lat, lng, t + HOUR / 2), 0, None)
        clear_sky = 1_000 * elevation**1.15
        irradiance = clear_sky * (1 - 0.75 * (cloud / 100) ** 3.4)
        return {
            "latitude": lat,
            "longitude": lng,
            "timezone": "GMT",
            "hourly_units": {
                "time": "unixtime",
                "temperature_2m": "°C",
                "cloud_cover": "%",
                "shortwave_radiation": "W/m²",
            },
            "hourly": {
                "time": times.tolist(),
                "temperature_2m": np.round(temperature, 1).tolist(),
                "cloud_cover": np.round(cloud).tolist(),
                "shortwave_radiation": np.round(irradiance, 1).tolist(),
            },
        }

    def hourly(self, *, lat: float, lng: float, start: int, end: int) -> HourlyWeather:
        return parse_open_meteo(self.open_meteo(lat=lat, lng=lng, start=start, end=end))


def slot_weather(
    provider: WeatherProvider, *, lat: float, lng: float, start: int, slots: int
) -> dict[str, np.ndarray]:
    """The provider's hourly weather at the midpoint of each 15-minute slot from `start`."""
    middles = start + 450 + 900 * np.arange(slots, dtype=np.int64)
    first = start // HOUR * HOUR - HOUR
    hourly = provider.hourly(lat=lat, lng=lng, start=first, end=int(middles[-1]) + 2 * HOUR)
    return hourly.at(middles)


def provider_from_settings(name: str, seed: int) -> WeatherProvider:
    """The configured provider; only the simulation ships today."""
    if name == "simulated":
        return SimulatedWeather(seed)
    raise WeatherUnavailable(f"unknown weather provider {name!r}")

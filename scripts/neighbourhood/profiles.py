"""Seeded 15-minute energy profiles in integer Wh: rooftop PV and household load.

PV follows the sun: a clear-sky curve from solar elevation (latitude, day of year, hour),
scaled by the system's kWp and a day-level cloudiness with 15-minute flicker. Household
load is a base load plus morning and evening peaks, scaled per household. Both are pure
functions of (seed, household, interval start), so any period can be recomputed alike.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

SLOT_SECONDS = 900
SLOTS_PER_HOUR = 3600 // SLOT_SECONDS


def _rng(*parts: object) -> random.Random:
    return random.Random("|".join(str(p) for p in parts))


def solar_elevation_sin(latitude_deg: float, unix_time: int) -> float:
    """sin(solar elevation) at a UTC time and latitude (longitude 0: noon at 12:00 UTC)."""
    day = (unix_time // 86_400) % 365
    hour = (unix_time % 86_400) / 3600
    declination = math.radians(-23.44) * math.cos(2 * math.pi * (day + 10) / 365)
    hour_angle = math.radians(15 * (hour - 12))
    latitude = math.radians(latitude_deg)
    return math.sin(latitude) * math.sin(declination) + math.cos(latitude) * math.cos(
        declination
    ) * math.cos(hour_angle)


@dataclass(frozen=True)
class PvSystem:
    peak_w: int  # nameplate (kWp × 1000)
    latitude_deg: float = 50.0
    performance_ratio: float = 0.82

    def generation_wh(self, slot_start: int, *, seed: int, household: str) -> int:
        """Energy produced in the 15-minute slot starting at `slot_start` (integer Wh), for
        `household`'s system in the run seeded `seed`."""
        midpoint = slot_start + SLOT_SECONDS // 2
        elevation = solar_elevation_sin(self.latitude_deg, midpoint)
        if elevation <= 0:
            return 0
        day_clouds = _rng(seed, "clouds", slot_start // 86_400).uniform(0.25, 1.0)
        flicker = _rng(seed, household, "pv", slot_start).uniform(0.85, 1.0)
        power_w = self.peak_w * self.performance_ratio * elevation**1.2 * day_clouds * flicker
        return int(power_w * SLOT_SECONDS / 3600)


@dataclass(frozen=True)
class Household:
    name: str
    annual_kwh: int = 3_500

    def consumption_wh(self, slot_start: int, *, seed: int) -> int:
        """Energy consumed in the 15-minute slot (integer Wh), never below the base load."""
        hour = (slot_start % 86_400) / 3600
        shape = (
            0.45
            + 0.9 * math.exp(-((hour - 7.5) ** 2) / 2.0)
            + 1.4 * math.exp(-((hour - 19.0) ** 2) / 4.5)
        )
        mean_w = self.annual_kwh * 1000 / 8760
        noise = _rng(seed, self.name, "load", slot_start).lognormvariate(0, 0.25)
        return max(int(mean_w * shape / 1.0 * noise * SLOT_SECONDS / 3600), int(0.3 * mean_w / 4))


def slots(start: int, end: int) -> range:
    """15-minute slot starts covering [start, end), aligned to the hour grid."""
    first = start - start % SLOT_SECONDS
    return range(first, end, SLOT_SECONDS)

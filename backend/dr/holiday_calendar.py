"""Holidays for DR baselines: the configured dates plus, optionally, a country's public holidays.

NYISO, PJM and CAISO treat holidays like weekend days when choosing baseline days
(backend/dr/baselines.py `day_type`), so a holiday in the lookback is not a weekday baseline day
and a holiday event day is matched against weekend days. The calendar comes from settings:
`dr_holidays` (explicit ISO dates, e.g. a utility's own non-business days) and
`dr_holiday_country` (ISO 3166 code; public holidays from the `holidays` package, which
computes them offline, no network).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import holidays

from backend.core.config import Settings


@lru_cache(maxsize=256)
def country_holidays(country: str, year: int) -> frozenset[date]:
    """Public holidays of `country` in `year` (NotImplementedError for an unknown country)."""
    return frozenset(holidays.country_holidays(country, years=year).keys())


@dataclass(frozen=True)
class HolidayCalendar:
    dates: frozenset[date] = frozenset()
    country: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> HolidayCalendar:
        return cls(dates=frozenset(settings.dr_holidays), country=settings.dr_holiday_country)

    def between(self, first: date, last: date) -> frozenset[date]:
        """Holidays in [first, last]."""
        found = {d for d in self.dates if first <= d <= last}
        if self.country:
            for year in range(first.year, last.year + 1):
                found |= {d for d in country_holidays(self.country, year) if first <= d <= last}
        return frozenset(found)


NO_HOLIDAYS = HolidayCalendar()

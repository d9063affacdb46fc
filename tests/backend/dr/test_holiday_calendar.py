"""The holiday calendar of DR baselines: configured dates, a country's public holidays, and the
settings that carry them."""

from __future__ import annotations

from datetime import date

import pytest

from backend.core.config import Settings
from backend.core.errors import ConfigurationError
from backend.dr.holiday_calendar import NO_HOLIDAYS, HolidayCalendar


def test_explicit_dates_within_the_range_only() -> None:
    calendar = HolidayCalendar(dates=frozenset({date(2026, 12, 24), date(2027, 3, 1)}))
    assert calendar.between(date(2026, 12, 1), date(2027, 1, 31)) == {date(2026, 12, 24)}
    assert NO_HOLIDAYS.between(date(2026, 1, 1), date(2026, 12, 31)) == frozenset()


def test_country_holidays_across_a_year_boundary() -> None:
    us = HolidayCalendar(country="US").between(date(2026, 11, 20), date(2027, 1, 5))
    # Thanksgiving (4th Thursday of November), Christmas, New Year's Day
    assert {date(2026, 11, 26), date(2026, 12, 25), date(2027, 1, 1)} <= us
    assert date(2026, 11, 27) not in us and date(2026, 11, 19) not in us
    kr = HolidayCalendar(country="KR", dates=frozenset({date(2026, 12, 30)}))
    got = kr.between(date(2026, 12, 20), date(2027, 1, 2))
    assert got == {date(2026, 12, 25), date(2026, 12, 30), date(2027, 1, 1)}


def test_settings_parse_dates_and_check_the_country(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GRIDLEDGER_DR_HOLIDAYS", '["2026-12-24", "2026-12-31"]')
    monkeypatch.setenv("GRIDLEDGER_DR_HOLIDAY_COUNTRY", "kr")
    settings = Settings(_env_file=None, data_dir=tmp_path)
    assert settings.dr_holidays == [date(2026, 12, 24), date(2026, 12, 31)]
    assert settings.dr_holiday_country == "KR"
    calendar = HolidayCalendar.from_settings(settings)
    assert calendar.between(date(2026, 12, 24), date(2026, 12, 31)) == {
        date(2026, 12, 24),
        date(2026, 12, 25),
        date(2026, 12, 31),
    }
    monkeypatch.delenv("GRIDLEDGER_DR_HOLIDAYS")
    monkeypatch.delenv("GRIDLEDGER_DR_HOLIDAY_COUNTRY")
    default = Settings(_env_file=None, data_dir=tmp_path)
    assert (default.dr_holidays, default.dr_holiday_country) == ([], None)
    with pytest.raises(ConfigurationError, match="DR_HOLIDAY_COUNTRY"):
        Settings(_env_file=None, data_dir=tmp_path, dr_holiday_country="XX")

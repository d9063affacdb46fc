"""Time on this side of the chain is always UTC and timezone-aware."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC (SQL defaults and audit stamps use it)."""
    return datetime.now(UTC)

"""Migration i16_runs_locked_writes: `reading_runs` loses its exclusion constraint (writers keep
runs apart under their (meter, day) locks, tests/backend/meters/test_runs.py); the downgrade
puts it back, and it refuses overlapping runs again."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from backend.core.db import make_engine
from backend.core.migrate import downgrade, upgrade
from tests.fixtures.database import revision_before

REVISION = "i16_runs_locked_writes"
CONSTRAINTS = text(
    "SELECT conname FROM pg_constraint WHERE conrelid = 'reading_runs'::regclass ORDER BY 1"
)
RUN = text(
    "INSERT INTO reading_runs (meter_id, day, first_slot, slots, revision, source, verified, "
    "received_at) VALUES ('m-mqtt10', 0, :first, 2, '{0,0}', '{rest,rest}', '{f,f}', "
    "ARRAY[now(), now()])"
)


def test_the_exclusion_constraint_goes_and_comes_back(fresh_pg_url):
    engine = make_engine(fresh_pg_url)
    with engine.connect() as connection:
        assert connection.execute(CONSTRAINTS).scalars().all() == [
            "reading_runs_pkey",
            "reading_runs_slots",
        ]
    downgrade(fresh_pg_url, revision_before(REVISION))
    with engine.connect() as connection:
        assert "reading_runs_no_overlap" in connection.execute(CONSTRAINTS).scalars().all()
        connection.execute(RUN, {"first": 4})
        with pytest.raises(IntegrityError, match="reading_runs_no_overlap"):
            connection.execute(RUN, {"first": 5})  # slots 5-6 overlap 4-5
        connection.rollback()
    upgrade(fresh_pg_url)
    with engine.connect() as connection:
        assert "reading_runs_no_overlap" not in connection.execute(CONSTRAINTS).scalars().all()
    engine.dispose()

"""`make run`'s status line names the freshness checks /health finds late."""

from __future__ import annotations

import math
import time

from backend.core.config import Settings
from backend.core.db import make_engine
from backend.core.migrate import upgrade
from backend.health.heartbeats import WATCHED, write_heartbeat
from scripts.devnet import StatusLine


def test_status_line_names_late_components_until_they_report(tmp_path):
    url = f"sqlite:///{tmp_path / 'gridledger.db'}"
    upgrade(url)
    engine = make_engine(url)
    settings = Settings(_env_file=None, data_dir=tmp_path, database_url=url)
    status = StatusLine(None, engine, simulated=True, settings=settings)  # type: ignore[arg-type]
    now = int(time.time())
    assert status.degraded(now) == " | DEGRADED: matcher, mqtt, beat, dispatcher, vtn"
    for component in WATCHED:
        write_heartbeat(engine, component)
    late = " | DEGRADED: matcher, mqtt, beat, dispatcher, vtn"
    assert status.degraded(now) == late  # asked again in 5 s
    status.freshness_at = -math.inf
    assert status.degraded(now) == ""
    engine.dispose()

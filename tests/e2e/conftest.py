"""The dashboard's browser tests share: the bundle, the real stack served by uvicorn (a fresh
devnet, a fresh PostgreSQL schema, the indexer and outbox publisher stepping in a thread), the
Chromium to drive and a folder for screenshots."""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from backend.core.config import Settings
from backend.health.heartbeats import WATCHED, Heartbeat
from backend.main import DASHBOARD_DIR
from indexer.base import Indexer
from indexer.outbox import OutboxPublisher, RedisStreamSink
from indexer.rpc import RetryPolicy, RpcClient
from tests.fixtures.app import app_on
from tests.fixtures.indexing import catch_up, thread_fetch_config
from tests.fixtures.server import serve, stepping
from tests.fixtures.services import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parents[2]


def dashboard_stale() -> bool:
    """Whether a dashboard source (or the build script) is newer than the built bundle."""
    bundle = DASHBOARD_DIR / "assets" / "dashboard.js"
    if not (bundle.is_file() and (DASHBOARD_DIR / "index.html").is_file()):
        return True
    sources = [ROOT / "backend/dashboard/build.mjs", *(ROOT / "backend/dashboard/src").rglob("*")]
    return max(p.stat().st_mtime for p in sources) > bundle.stat().st_mtime


@pytest.fixture(scope="module")
def dashboard_build() -> Path:
    """Build the bundle the way `make setup` does, only when a source is newer (esbuild is fast,
    but the build empties `static/` first: a rebuild while another xdist worker's browser loads
    the page answered it 503 dashboard-not-built). A file lock keeps the workers' builds apart."""
    checkout = hashlib.sha256(bytes(ROOT)).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"gridledger-dashboard-{checkout}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if dashboard_stale():
            subprocess.run(
                ["node", "backend/dashboard/build.mjs"],
                cwd=ROOT,
                check=True,
                capture_output=True,
                timeout=60,
            )
    assert (
        DASHBOARD_DIR / "assets" / "dashboard.js"
    ).stat().st_size > 50_000  # chart.js is bundled
    return DASHBOARD_DIR


@dataclass
class Stack:
    base_url: str
    settings: Settings
    engine: Engine


@pytest.fixture
def served_stack(devnet, fresh_pg_url, redis_client, dashboard_build) -> Iterator[Stack]:
    settings = devnet.settings.model_copy(
        update={"database_url": fresh_pg_url, "redis_url": TEST_REDIS_URL}
    )
    app, engine = app_on(fresh_pg_url, settings)
    rpc = RpcClient(
        devnet.node.rpc_url, timeout_s=5, retry=RetryPolicy(attempts=30, max_delay_s=0.5)
    )
    indexer = Indexer(engine, rpc, devnet.deployment, thread_fetch_config(confirmation_depth=0))
    publisher = OutboxPublisher(
        engine, RedisStreamSink(TEST_REDIS_URL, stream=settings.outbox_stream)
    )

    # the tests match, settle and issue themselves: they stand in for these components
    stand_ins = [Heartbeat(engine, component, interval_s=1) for component in WATCHED]

    def step():
        catch_up(indexer)
        publisher.publish_pending()
        for heartbeat in stand_ins:
            heartbeat.beat()

    with serve(app) as base_url, stepping(step) as stepped:
        assert stepped.wait(30), "the indexer never completed a step"
        yield Stack(base_url, settings, engine)
    engine.dispose()


@pytest.fixture
def stack(served_stack: Stack) -> str:
    """The base URL of the served stack."""
    return served_stack.base_url


@pytest.fixture
def artifacts(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("dashboard-artifacts")
    print(f"\ndashboard screenshots: {folder}")
    return folder

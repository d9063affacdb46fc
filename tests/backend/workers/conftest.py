"""A Redis server of the test's own (to restart it) and real Celery worker processes."""

from __future__ import annotations

import os

import pytest

from tests.fixtures.settlement import market
from tests.fixtures.workers import OwnRedis, Worker

__all__ = ["market"]  # the settlement world, a fixture pytest finds here by name


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def worker_factory(tmp_path):
    workers = []

    def build(**env) -> Worker:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("GRIDLEDGER_")}
        full = {
            **inherited,  # settings come from `env` alone, not from the shell running pytest
            "GRIDLEDGER_ENVIRONMENT": "development",
            **{k: str(v) for k, v in env.items()},
        }
        worker = Worker(full, tmp_path)
        workers.append(worker)
        return worker

    yield build
    for worker in workers:
        worker.kill()

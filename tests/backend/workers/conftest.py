"""A Redis server of the test's own (to restart it) and real Celery worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from backend.chain.anvil import free_port
from backend.core.config import PROJECT_ROOT
from tests.backend.settlement.conftest import market  # noqa: F401  (fixture reuse)


class OwnRedis:
    def __init__(self, directory: Path):
        self.port = free_port()
        self.directory = directory
        self.process = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


class Worker:
    """`celery worker -B` in its own process group, so SIGKILL takes the whole pool."""

    def __init__(self, env: dict, log_dir: Path):
        self.env = env
        self.log_dir = log_dir
        self.process = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.log_dir / f"worker-{self.starts}.log", "w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "backend.workers.app",
                "worker",
                "-B",
                "--concurrency=2",
                "-l",
                "info",
                "-n",
                f"w{self.starts}@%h",
                "--schedule",
                str(self.log_dir / f"beat-{self.starts}"),
            ],
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log(self) -> str:
        return "\n".join(p.read_text()[-3000:] for p in sorted(self.log_dir.glob("worker-*.log")))


@pytest.fixture
def worker_factory(tmp_path):
    workers = []

    def build(**env) -> Worker:
        full = {
            **os.environ,
            "GRIDLEDGER_ENVIRONMENT": "development",
            **{k: str(v) for k, v in env.items()},
        }
        worker = Worker(full, tmp_path)
        workers.append(worker)
        return worker

    yield build
    for worker in workers:
        worker.kill()

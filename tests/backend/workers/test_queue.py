"""/health's queue depth counts tasks waiting on either broker (filesystem or Redis)."""

from __future__ import annotations

from celery import Celery

from backend.core.config import Settings
from backend.workers.queue import QUEUE_NAME, filesystem_folders, queue_depth
from tests.fixtures.services import TEST_REDIS_URL


def producer(settings: Settings) -> Celery:
    broker = settings.resolved_broker_url
    app = Celery("depth-test", broker=broker)
    options = {}
    if broker.startswith("filesystem"):
        folders = filesystem_folders(settings)
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        options = {
            "data_folder_in": str(folders["queue"]),
            "data_folder_out": str(folders["queue"]),
            "control_folder": str(folders["control"]),
            "processed_folder": str(folders["processed"]),
        }
    app.conf.update(task_default_queue=QUEUE_NAME, broker_transport_options=options)
    return app


def test_filesystem_queue_depth(tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path, redis_url="")
    assert queue_depth(settings) == {"broker": "filesystem", "depth": 0}
    app = producer(settings)
    for _ in range(3):
        app.send_task("settlement.close_periods")
    assert queue_depth(settings) == {"broker": "filesystem", "depth": 3}


def test_redis_queue_depth(tmp_path, redis_client):
    settings = Settings(_env_file=None, data_dir=tmp_path, redis_url=TEST_REDIS_URL)
    assert queue_depth(settings) == {"broker": "redis", "depth": 0}
    app = producer(settings)
    app.send_task("settlement.issue_certificates")
    app.send_task("settlement.issue_certificates")
    assert queue_depth(settings) == {"broker": "redis", "depth": 2}

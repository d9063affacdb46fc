"""Where the task queue lives and how deep it is (for /health), without importing Celery."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import redis

from backend.core.config import Settings

QUEUE_NAME = "gridledger"


def filesystem_folders(settings: Settings) -> dict[str, Path]:
    """The folders of kombu's filesystem transport (the broker that needs no server)."""
    root = settings.data_dir / "celery"
    return {name: root / name for name in ("queue", "processed", "control")}


def queue_depth(settings: Settings) -> dict[str, str | int | None]:
    """Messages waiting for a worker: {"broker": ..., "depth": n}."""
    broker = settings.resolved_broker_url
    if broker.startswith("filesystem"):
        folder = filesystem_folders(settings)["queue"]
        depth = sum(1 for f in folder.glob(f"*.{QUEUE_NAME}.msg")) if folder.is_dir() else 0
        return {"broker": "filesystem", "depth": depth}
    if broker.startswith(("redis://", "rediss://")):
        client = redis.Redis.from_url(broker, socket_timeout=2, socket_connect_timeout=2)
        try:
            depth = cast(int, client.llen(QUEUE_NAME))  # a sync client: llen returns int
            return {"broker": "redis", "depth": depth}
        finally:
            client.close()
    return {"broker": broker.split(":", 1)[0], "depth": None}

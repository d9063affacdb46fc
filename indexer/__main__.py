"""`python -m indexer`: follow the deployed contracts and mirror their events into SQL."""

from __future__ import annotations

import logging
import signal
import sys

from backend.chain.deployment import Deployment
from backend.core.config import Settings
from backend.core.db import get_engine
from backend.core.errors import GridLedgerError
from backend.core.startup import settings_or_exit
from indexer.base import Indexer, IndexerConfig
from indexer.outbox import OutboxPublisher, RedisStreamSink
from indexer.rpc import RpcClient


def build_indexer(settings: Settings) -> Indexer:
    engine = get_engine()
    publisher = None
    if settings.redis_url:
        publisher = OutboxPublisher(engine, RedisStreamSink(settings.redis_url))
    return Indexer(
        engine,
        RpcClient(settings.rpc_url),
        Deployment.read(settings.deployment_file),
        IndexerConfig(
            finality_depth=settings.finality_depth,
            confirmation_depth=settings.confirmation_depth,
            initial_range=settings.indexer_initial_range,
        ),
        publisher=publisher,
    )


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = settings_or_exit("indexer")
    stopping: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        indexer = build_indexer(settings)
        indexer.run(settings.indexer_poll_interval_s, stop=lambda: bool(stopping))
    except KeyboardInterrupt:
        return 0
    except GridLedgerError as exc:
        print(f"indexer: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

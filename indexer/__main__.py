"""`python -m indexer`: follow the deployed contracts and mirror their events into SQL.

`python -m indexer rebuild`: rebuild the mirror from the chain in one transaction (the API
keeps serving the old mirror until it commits; see indexer/rebuild.py)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from backend.chain.deployment import Deployment
from backend.core.config import Settings
from backend.core.db import get_engine
from backend.core.errors import GridLedgerError
from backend.core.startup import settings_or_exit
from indexer.base import Indexer, indexer_config
from indexer.outbox import OutboxPublisher, RedisStreamSink
from indexer.rebuild import rebuild_mirror
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
        indexer_config(settings),
        publisher=publisher,
    )


def rebuild(settings: Settings) -> int:
    report = rebuild_mirror(
        get_engine(),
        RpcClient(settings.rpc_url),
        Deployment.read(settings.deployment_file),
        indexer_config(settings),
    )
    print(
        f"indexer: mirror rebuilt from the chain up to block {report.head_block} "
        f"({report.events} events) in {report.seconds:.1f} s"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m indexer", description=__doc__)
    parser.add_argument("command", nargs="?", choices=["follow", "rebuild"], default="follow")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = settings_or_exit("indexer")
    if args.command == "rebuild":
        try:
            return rebuild(settings)
        except GridLedgerError as exc:
            print(f"indexer: {exc}", file=sys.stderr)
            return 1
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

"""A devnet with trades, its indexer mirror in a fresh PostgreSQL schema, registered meters."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlmodel import Session, select

from backend.accounts.models import Account
from backend.core.config import Settings
from backend.core.db import make_engine
from backend.core.migrate import upgrade
from backend.meters.models import Meter
from backend.meters.schemas import MeterCreate
from backend.meters.services import ingest_readings, register_meter
from backend.meters.validation import iso
from backend.settlement.chain import ChainContext
from backend.settlement.locks import RedisLocks
from indexer.base import Indexer, IndexerConfig
from indexer.models import Trade
from indexer.rpc import RetryPolicy, RpcClient
from tests.fixtures.devnet import Devnet
from tests.fixtures.services import TEST_REDIS_URL


@dataclass
class Market:
    devnet: Devnet
    engine: object
    indexer: Indexer
    ctx: ChainContext
    locks: RedisLocks
    settings: Settings
    database_url: str

    def catch_up(self) -> None:
        for _ in range(1_000):
            if self.indexer.step() == 0:
                return
        raise AssertionError("indexer did not catch up")

    def session(self) -> Session:
        return Session(self.engine)

    def open_trades(self) -> list[Trade]:
        with self.session() as session:
            return list(
                session.exec(
                    select(Trade).where(Trade.product == "energy").order_by(Trade.trade_id)
                ).all()
            )

    def meter_readings(self, exports: dict[tuple[str, int], int], now: int | None = None):
        """Ingest export readings {(meter_id, slot_start): Wh} as the meters would send them."""
        body = [
            {"meterId": m, "timestamp": iso(s), "exportWh": wh, "importWh": 0}
            for (m, s), wh in exports.items()
        ]
        with self.session() as session:
            return ingest_readings(
                session, body, source="rest", now=now or self.ctx.now(), settings=self.settings
            )


@pytest.fixture
def market(devnet, fresh_pg_url, redis_client) -> Market:
    yield from build_market(devnet, fresh_pg_url, redis_client)


@pytest.fixture(params=["postgresql", "sqlite"])
def any_market(request, devnet, redis_client, tmp_path) -> Market:
    """The same world on PostgreSQL and on the embedded SQLite file `make run` uses."""
    if request.param == "postgresql":
        url = request.getfixturevalue("fresh_pg_url")
    else:
        url = f"sqlite:///{tmp_path / 'gridledger.db'}"
        upgrade(url)
    yield from build_market(devnet, url, redis_client)


def build_market(devnet, database_url, redis_client):
    fresh_pg_url = database_url
    settings = Settings(
        _env_file=None,
        data_dir=devnet.settings.data_dir,
        rpc_url=devnet.node.rpc_url,
        database_url=fresh_pg_url,
        redis_url=TEST_REDIS_URL,
        settlement_gate_delay_s=60,
        settlement_missing_data_deadline_s=1_800,
        settlement_batch_size=3,
    )
    engine = make_engine(fresh_pg_url)
    rpc = RpcClient(
        devnet.node.rpc_url, timeout_s=5, retry=RetryPolicy(attempts=30, max_delay_s=0.5)
    )
    indexer = Indexer(engine, rpc, devnet.deployment, IndexerConfig())
    with Session(engine) as session:
        for person in devnet.workload.people:
            account = Account(
                address=person.address.lower(), email=f"{person.address.lower()}@example.org"
            )
            session.add(account)
            session.flush()
            register_meter(
                session,
                account,
                MeterCreate(
                    name=f"meter:{person.address}",
                    capacity_w=10_000,
                    device_id=devnet.workload.devices[person.address],
                ),
            )
    ctx = ChainContext.from_settings(settings, devnet.deployment)
    yield Market(devnet, engine, indexer, ctx, RedisLocks(redis_client), settings, fresh_pg_url)
    engine.dispose()


def meters_of(market: Market) -> dict[str, str]:
    with market.session() as session:
        return {m.name.split(":", 1)[1]: m.meter_id for m in session.exec(select(Meter)).all()}

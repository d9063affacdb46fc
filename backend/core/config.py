"""One `Settings` object for every URL and knob; environment variables use `GRIDLEDGER_`.

Embedded defaults (SQLite file, Anvil on localhost, in-process Celery transport) make
`make run` work on a bare machine. Development keys are Anvil's well-known test keys:
they are refused on any chain but the local devnet and in any environment but development
(`backend/core/secret_policy.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.core.errors import ConfigurationError
from backend.core.secret_policy import (
    LOCAL_DEVNET_CHAIN_IDS,
    private_key_problem,
    refusal,
    secret_problem,
    shared_key_problems,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Anvil's default mnemonic ("test test ... junk"), accounts 0-4: public, devnet only.
DEV_DEPLOYER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
DEV_SETTLER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
DEV_OPERATOR_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
DEV_ISSUER_KEY = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"
DEV_REGISTRAR_KEY = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a"
# Account 9: the timelock's proposer and executor on the devnet (`python -m backend.admin`).
DEV_ADMIN_KEY = "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"
DEVNET_TIMELOCK_DELAY_S = 60  # short enough to try the admin command by hand
PRODUCTION_TIMELOCK_DELAY_S = 2 * 86_400
DEV_SECRET_KEY = "development-only-secret-key-change-me"
DEV_MASTER_KEY = "00" * 32
# Keys of the roles the API and workers exercise: required, and strong, outside the devnet.
ROLE_KEY_SETTINGS = (
    "settler_private_key",
    "operator_private_key",
    "issuer_private_key",
    "registrar_private_key",
)
# Keys only `scripts/deploy.py` and `python -m backend.admin` use: empty outside the devnet
# unless set for that command (and then checked like the others).
GOVERNANCE_KEY_SETTINGS = ("deployer_private_key", "admin_private_key")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDLEDGER_", env_file=".env", extra="ignore")

    environment: Literal["development", "staging", "production"] = "development"
    data_dir: Path = PROJECT_ROOT / "data"

    # Storage and messaging
    database_url: str = ""  # empty: SQLite file in data_dir
    redis_url: str = ""  # empty: no Redis (embedded defaults); e.g. redis://127.0.0.1:6379/0
    celery_broker_url: str = (
        ""  # empty: Redis if GRIDLEDGER_REDIS_URL is set, else a local transport
    )

    # Chain
    rpc_url: str = "http://127.0.0.1:8545"
    chain_id: int = 31337
    # The JSON-RPC URL browsers' wallets use (`GET /v1/chain`, `wallet_addEthereumChain`);
    # empty: `rpc_url` in development, none elsewhere (a private node URL is never published)
    public_rpc_url: str = ""
    chain_name: str = "GridLedger devnet"
    deployment_file: Path = Path()  # empty: data_dir/deployment.json
    anvil_state_file: Path = Path()  # empty: data_dir/anvil-state.json
    # Anvil rewrites its state file this often, so a killed node loses at most this much
    # (0: only on a clean exit, as Anvil does by default)
    anvil_state_interval_s: int = Field(default=2, ge=0)
    confirmation_depth: int = Field(default=2, ge=0)  # blocks deep before "confirmed"
    finality_depth: int = Field(default=64, ge=1)  # deepest reorg the indexer rewinds
    indexer_poll_interval_s: float = Field(default=0.05, gt=0)
    indexer_initial_range: int = Field(default=200, ge=1)  # eth_getLogs blocks, adaptive
    # backfill's fetch and decode in a forked worker process (else on a thread of the indexer's)
    indexer_fetch_process: bool = True
    # backfill's writes (COPY, commit) on a thread of their own while the writer applies the
    # handlers and takes the next batch (indexer/write_behind.py; measure before turning on)
    indexer_write_behind: bool = False

    # Keys and secrets
    # Deploys the contracts, keeps GridUSD's MINTER_ROLE (the devnet faucet) and renounces
    # DEFAULT_ADMIN_ROLE; empty: Anvil account 0 on the local devnet, none elsewhere
    deployer_private_key: SecretStr = SecretStr("")
    # The timelock's proposer/executor (`python -m backend.admin`), never the API's: empty:
    # Anvil account 9 on the local devnet, none elsewhere
    admin_private_key: SecretStr = SecretStr("")
    admin_address: str = ""  # the deploy script's timelock admin; empty: admin_private_key's
    # Seconds between proposing and executing an admin operation (the TimelockController's
    # minDelay, fixed at deployment); empty: 60 on the local devnet, 2 days elsewhere
    timelock_min_delay_s: int | None = Field(default=None, ge=0)
    settler_private_key: SecretStr = SecretStr(DEV_SETTLER_KEY)  # SETTLER_ROLE (workers)
    operator_private_key: SecretStr = SecretStr(DEV_OPERATOR_KEY)  # OPERATOR_ROLE (matching)
    issuer_private_key: SecretStr = SecretStr(DEV_ISSUER_KEY)  # ISSUER_ROLE (REC issuance)
    registrar_private_key: SecretStr = SecretStr(DEV_REGISTRAR_KEY)  # REGISTRAR_ROLE
    # Head-end / metering data provider whose signed readings RECRegistry accepts for any
    # approved meter (METER_DATA_PROVIDER_ROLE, granted at deployment); empty: none
    meter_data_provider_address: str = ""
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    master_key_hex: SecretStr = SecretStr(DEV_MASTER_KEY)

    # API
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)

    # API sessions and load: tokens, SIWE sign-in, rate limits, idempotency, workers, cache
    access_token_minutes: int = Field(default=15, ge=1, le=1440)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    api_key_default_days: int = Field(default=90, ge=1)  # a new key's life when none is asked
    api_key_max_days: int = Field(default=365, ge=1)  # the longest a new key may live
    # EIP-4361 domains (host[:port] the pages are served from) sign-in accepts; empty: the
    # request's Host (development; set the list in production and behind a proxy)
    siwe_domains: list[str] = Field(default_factory=list)
    siwe_issued_at_window_s: int = Field(default=300, ge=1)  # |now - Issued At| accepted
    siwe_nonce_ttl_s: int = Field(default=600, ge=30)
    rate_limit_per_minute: int = Field(default=600, ge=1)  # per account, fixed one-minute window
    # sign-up, sign-in, refresh, SIWE: per client IP, fixed one-minute window
    anonymous_rate_limit_per_minute: int = Field(default=600, ge=1)
    login_failures_before_backoff: int = Field(default=5, ge=1)  # per email, then 1, 2, 4 … s
    login_failure_window_s: int = Field(default=900, ge=60)
    login_backoff_max_s: int = Field(default=900, ge=1)
    idempotency_ttl_s: int = Field(default=86_400, ge=60)  # a finished response is replayed
    idempotency_pending_ttl_s: int = Field(default=300, ge=5)  # a crashed request frees its key
    idempotency_max_body_bytes: int = Field(default=16 * 2**20, ge=1024)  # larger: 413
    outbox_stream: str = "gridledger:outbox"
    ws_max_connections_per_ip: int = Field(default=100, ge=1)  # open `/v1/ws` sockets, per worker
    ws_max_queue: int = Field(default=1_000, ge=1)  # messages a socket may lag before it is closed
    api_workers: int = Field(
        default=1, ge=1, le=64
    )  # uvicorn processes; >1 needs Redis (shared limits)
    public_cache_ttl_s: float = Field(default=1.0, ge=0)  # public market reads from memory; 0 = off
    public_cache_max_bytes: int = Field(default=64 * 2**20, ge=0)  # per worker
    # async reads (backend/core/async_db.py): PostgreSQL connections per API worker process
    async_read_pool_size: int = Field(default=32, ge=1, le=256)
    # identical uncached order-book reads in flight share one statement (backend/api/fast_book.py)
    orderbook_share_reads: bool = True
    # order intake trusts the indexer's mirror while its cursor is at most this far below the
    # chain head (backend/market/mirror_state.py); further behind, orders read the chain
    intake_mirror_max_lag_blocks: int = Field(default=0, ge=0)
    # wallet orders are stored by one batched writer per API process, at most this many per
    # transaction (backend/market/order_writer.py); a batch is what queued meanwhile
    intake_batch_max_orders: int = Field(default=256, ge=1, le=10_000)
    # the writer's publisher sends committed order events at most this often, the batches
    # committed meanwhile together (backend/market/order_publisher.py); 0: after every batch
    intake_publish_interval_s: float = Field(default=0.02, ge=0, le=1)
    # `/metrics` wants `Authorization: Bearer <token>` when set; unset, it answers loopback
    # clients only, and only on the local devnet (elsewhere a proxy would make every client local)
    metrics_token: SecretStr | None = None

    # Market parameters used at deployment
    tolerance_bps: int = Field(default=500, ge=0, le=10_000)
    penalty_bps: int = Field(default=2_000, ge=0, le=10_000)
    reclaim_grace_period_s: int = Field(
        default=86_400, ge=4 * 3_600, le=30 * 86_400
    )  # EnergyMarket's MIN/MAX_RECLAIM_GRACE_PERIOD; each trade keeps the one it was made under

    # Metering (MQTT and REST ingestion), settlement of deliveries, REC issuance
    meter_clock_skew_s: int = Field(default=60, ge=0)  # readings may end this far in the future
    meter_max_import_wh: int = Field(default=1_000_000, gt=0)  # per 15-minute interval
    meter_max_batch: int = Field(default=100_000, gt=0)  # readings per bulk request
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    mqtt_username: str = ""  # the ingestion subscriber's own broker login, if any
    mqtt_password: SecretStr = SecretStr("")
    mqtt_topic_root: str = "energy-cloud"  # energy-cloud/{region}/{deviceType}/{deviceId}/{metric}
    mqtt_client_id: str = "gridledger-ingest"  # + "-<index>" per subscriber process
    mqtt_shared_group: str = (
        "gridledger"  # $share/<group>/...: subscriber processes split the stream
    )
    mqtt_retry_max_s: float = Field(default=30, gt=0)  # back-off cap while the database is down
    mqtt_subscribers: int = Field(default=2, ge=1, le=16)  # processes on the shared subscription
    mqtt_batch_max_messages: int = Field(default=5_000, ge=1, le=65_535)  # per commit (and ack)
    mqtt_batch_linger_ms: int = Field(default=20, ge=0)  # wait this long for a batch to fill
    dead_letter_max_bytes: int = Field(default=65_536, ge=0)  # payload bytes kept per dead letter
    settlement_gate_delay_s: int = Field(
        default=300, ge=0
    )  # after a period ends, before closing it
    settlement_missing_data_deadline_s: int = Field(default=3_600, ge=0)  # then settle as zero
    settlement_reclaim_margin_s: int = Field(
        default=3_600, ge=0
    )  # settle this long before reclaim opens
    settlement_batch_size: int = Field(default=50, ge=1, le=500)  # trades per settleBatch
    # settleBatch transactions signed (consecutive nonces) and broadcast before any receipt
    settlement_pipeline_depth: int = Field(default=4, ge=1, le=64)
    settlement_lock_timeout_s: int = Field(default=300, ge=1)  # a dead worker's lock expires
    settlement_beat_interval_s: float = Field(default=30, gt=0)
    rec_batch_size: int = Field(default=24, ge=1, le=500)  # device-hours per issueBatch
    # DR settlement (backend/dr/settlement.py): an event is settled this long after it ends,
    # waiting for missing verified readings until the deadline (then they count as no delivery)
    dr_settlement_delay_s: int = Field(default=900, ge=0)
    dr_missing_data_deadline_s: int = Field(default=21_600, ge=0)
    dr_settlement_batch_size: int = Field(default=50, ge=1, le=500)  # participants per `settle`
    # DR baselines (backend/dr/holiday_calendar.py): holidays count as weekend days; explicit
    # ISO dates (JSON list) plus, optionally, a country's public holidays (ISO 3166, e.g. "KR")
    dr_holidays: list[date] = Field(default_factory=list)
    dr_holiday_country: str | None = None
    # VPP dispatch (backend/vpp/dispatch.py): unmet demand and a flexible load's shortfall cost
    # this much per kWh in the optimisation (token units), so a schedule sheds only when it must:
    # keep it far above the market's prices (10 gUSD/kWh, a value of lost load; trades are ~0.1)
    vpp_unmet_penalty_per_kwh: int = Field(default=10_000_000, ge=1)
    # Downlink (backend/vpp/downlink.py, the `dispatcher` process): a device must acknowledge a
    # command within `vpp_ack_timeout_s` of its publication or the command is late; a command the
    # broker refused this many times fails; the dispatcher polls for work this often
    vpp_ack_timeout_s: int = Field(default=60, ge=1)
    vpp_publish_attempts: int = Field(default=5, ge=1)
    vpp_dispatch_poll_s: float = Field(default=1.0, gt=0)
    vpp_dispatch_client_id: str = "gridledger-dispatcher"
    # Schedule following (backend/vpp/adherence.py): a slot is followed when the measured mean
    # power is within this share of the resource's rated power of the setpoint
    vpp_adherence_tolerance: float = Field(default=0.1, ge=0, le=1)
    # The daily optimisation (beat task `vpp.optimize_daily`): how often the beat asks (it runs
    # once per VPP and UTC day), the days of trades that give the price of each time of day, and
    # the price per kWh (token units) when the market has no trades yet
    vpp_daily_interval_s: float = Field(default=3_600, gt=0)
    vpp_daily_beat: bool = True  # false: aggregators optimise through the API only
    vpp_price_lookback_days: int = Field(default=7, ge=1, le=90)
    vpp_default_price_per_kwh: int = Field(default=100_000, ge=0)  # 0.1 gUSD, the market's scale
    # Aggregator trading (backend/vpp/trading.py): slots below this many Wh are not traded;
    # surplus slots also offer this share of the batteries' unscheduled discharge headroom
    # (delivered: backend/vpp/flex_delivery.py patches fills into the batteries' schedules);
    # the price per kWh when neither the request nor the schedule gives one; the beat's interval
    vpp_trading_min_wh: int = Field(default=100, ge=1)
    vpp_trading_flex_share: float = Field(default=0.5, ge=0, le=1)
    vpp_trading_default_price: int = Field(default=150_000, ge=1)
    vpp_trading_interval_s: float = Field(default=900, gt=0)
    vpp_trading_beat: bool = True  # false: aggregators trade through the API only
    # How often fills of VPP orders relying on battery headroom are looked for and patched into
    # the batteries' schedules (backend/vpp/flex_delivery.py); well under a slot
    vpp_flex_delivery_interval_s: float = Field(default=60, gt=0)
    # Forecasts (backend/forecast): where weather comes from, how much history a forecast reads,
    # and where a target with no located resource is (its weather)
    forecast_weather_provider: Literal["simulated"] = "simulated"
    forecast_weather_seed: int = 0
    forecast_lookback_hours: int = Field(default=672, ge=168, le=8_760)
    forecast_default_lat: float = Field(default=37.5665, ge=-90, le=90)
    forecast_default_lng: float = Field(default=126.978, ge=-180, le=180)
    forecast_refresh_interval_s: float = Field(default=86_400, gt=0)  # beat: every VPP's refit
    # Reading runs (backend/meters/compaction.py): the beat joins the adjacent runs of the last
    # `reading_compaction_days` finished UTC days this often (live meters store a run per reading)
    reading_compaction_interval_s: float = Field(default=3_600, gt=0)
    reading_compaction_days: int = Field(default=3, ge=1, le=366)

    # Running the whole stack (`make run`): clock, matcher, simulated neighbourhood
    clock: Literal["wall", "chain"] = (
        "wall"  # "chain": "now" is the latest block's timestamp (simulated time)
    )
    matcher_interval_s: float = Field(default=1.0, gt=0)  # operator matcher rounds
    # an order the chain rejected this many times in the matcher's simulations is withdrawn
    match_failure_limit: int = Field(default=3, ge=1)
    simulate: bool = True  # `make run` drives the simulated neighbourhood (and sets clock=chain)
    sim_seconds_per_day: float = Field(default=240, gt=0)  # wall seconds per simulated day
    sim_hours: float = Field(
        default=0, ge=0
    )  # stop the simulator after this many simulated hours; 0: never
    sim_seed: int = 7
    sim_prosumers: int = Field(default=20, ge=1, le=500)
    sim_consumers: int = Field(default=30, ge=1, le=500)
    sim_start_hour_utc: int = Field(default=5, ge=0, le=23)  # a new chain jumps ahead to this hour
    sim_mqtt: bool = True  # household meters publish over MQTT when the broker answers (else REST)
    # simulated OpenADR VENs (`python -m scripts.vens`): this many prosumer households and the
    # battery run openleadr VENs against the VTN (0: none); each event is opted out with this
    # probability (else in)
    sim_vens: int = Field(default=5, ge=0, le=500)
    sim_ven_opt_out_probability: float = Field(default=0.2, ge=0, le=1)

    # TLS (README "Security"): "dev" serves the API over HTTPS and MQTT on a TLS listener with
    # certificates of the development CA in data_dir/tls (made on first use, then reused);
    # "on" with certificates of your own (GRIDLEDGER_TLS_CERT_FILE, _KEY_FILE). Servers and our
    # clients refuse anything below TLS 1.3.
    tls: Literal["off", "dev", "on"] = "off"
    tls_cert_file: Path = Path()  # the API's certificate chain (PEM); dev: data_dir/tls/server.pem
    tls_key_file: Path = Path()  # its private key (PEM); dev: data_dir/tls/server.key
    # the CA our clients (neighbourhood, devnet, MQTT subscriber) trust for the API and the
    # broker; empty: dev: data_dir/tls/ca.pem, on: the system's trust store
    tls_ca_file: Path = Path()
    mqtt_tls_port: int = Field(default=8883, ge=1, le=65535)  # the broker's TLS listener
    # Supervision (`make run`), the beat's lock, heartbeats and what /health calls late
    supervisor_backoff_initial_s: float = Field(default=1.0, gt=0)  # doubled per death
    supervisor_backoff_max_s: float = Field(default=30.0, gt=0)
    supervisor_max_deaths: int = Field(default=5, ge=1)  # within the window: stop the stack
    supervisor_death_window_s: float = Field(default=300.0, gt=0)
    beat_lock_ttl_s: float = Field(default=15.0, gt=0)  # a killed beat's lock frees this late
    heartbeat_interval_s: float = Field(default=5.0, gt=0)  # components write at most this often
    # wall seconds since a component's (matcher, MQTT subscriber, beat) last heartbeat
    health_heartbeat_max_age_s: float = Field(default=60.0, gt=0)
    # clock seconds a period may stay unsettled past its gate (covers the missing-data deadline)
    health_settlement_late_s: int = Field(default=4_500, ge=0)
    # clock seconds a device-hour may wait for its certificate once it is due (hour end + gate
    # + missing-data deadline)
    health_issuance_late_s: int = Field(default=1_800, ge=0)
    health_outbox_late_s: float = Field(default=60.0, gt=0)  # oldest unpublished outbox row
    # OpenADR 2.0b VTN (`python -m backend.openadr`): with TLS on it serves HTTPS with the API's
    # certificate and asks every VEN for a client certificate issued by GRIDLEDGER_TLS_CA_FILE
    vtn_host: str = "127.0.0.1"
    vtn_port: int = Field(default=8085, ge=1, le=65535)
    vtn_id: str = "gridledger-vtn"
    vtn_poll_interval_s: float = Field(default=10.0, gt=0)  # oadrPoll frequency asked of VENs
    vtn_dispatch_interval_s: float = Field(default=1.0, gt=0)  # published events -> VEN queues
    # the VTN reloads its in-memory view of the VENs this often (a revoked VEN is refused
    # within it; registrations made by the VTN itself count at once)
    vtn_registry_refresh_s: float = Field(default=2.0, gt=0)

    @field_validator("dr_holiday_country")
    @classmethod
    def _known_holiday_country(cls, value: str | None) -> str | None:
        if not value:
            return None
        import holidays  # only when a country is configured

        code = value.strip().upper()
        if code not in holidays.list_supported_countries():
            raise ConfigurationError(
                f"GRIDLEDGER_DR_HOLIDAY_COUNTRY {value!r}: not a country the holidays package knows"
            )
        return code

    @model_validator(mode="after")
    def _fill_paths_and_refuse_dev_secrets(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'gridledger.db'}"
        if self.deployment_file == Path():
            self.deployment_file = self.data_dir / "deployment.json"
        if self.anvil_state_file == Path():
            self.anvil_state_file = self.data_dir / "anvil-state.json"
        self._fill_tls_paths()
        try:
            master_key = bytes.fromhex(self.master_key_hex.get_secret_value())
        except ValueError:
            master_key = b""
        if len(master_key) != 32:
            raise ConfigurationError(
                "GRIDLEDGER_MASTER_KEY_HEX must be 64 hex characters (AES-256 key)"
            )
        if self.api_workers > 1 and not self.redis_url:
            raise ConfigurationError(
                "GRIDLEDGER_API_WORKERS > 1 needs GRIDLEDGER_REDIS_URL: rate limits, "
                "idempotency keys and SIWE nonces must be shared between the workers"
            )
        if not self.requires_production_secrets:
            for name, dev_key in (
                ("deployer_private_key", DEV_DEPLOYER_KEY),
                ("admin_private_key", DEV_ADMIN_KEY),
            ):
                if not getattr(self, name).get_secret_value():
                    setattr(self, name, SecretStr(dev_key))
        if self.timelock_min_delay_s is None:
            self.timelock_min_delay_s = (
                PRODUCTION_TIMELOCK_DELAY_S
                if self.requires_production_secrets
                else DEVNET_TIMELOCK_DELAY_S
            )
        if self.requires_production_secrets:
            line = refusal(
                f"on chain {self.chain_id} ({self.environment})", self._secret_problems()
            )
            if line:
                raise ConfigurationError(line)
        return self

    def _fill_tls_paths(self) -> None:
        if self.tls == "dev":
            folder = self.data_dir / "tls"
            for name, file in (
                ("tls_cert_file", "server.pem"),
                ("tls_key_file", "server.key"),
                ("tls_ca_file", "ca.pem"),
            ):
                if getattr(self, name) == Path():
                    setattr(self, name, folder / file)
        elif self.tls == "on" and Path() in (self.tls_cert_file, self.tls_key_file):
            raise ConfigurationError(
                "GRIDLEDGER_TLS=on needs GRIDLEDGER_TLS_CERT_FILE and GRIDLEDGER_TLS_KEY_FILE "
                "(or GRIDLEDGER_TLS=dev for the development CA)"
            )

    @property
    def tls_enabled(self) -> bool:
        return self.tls != "off"

    @property
    def api_url(self) -> str:
        """Where our own clients reach the API: https when TLS is on."""
        return f"{'https' if self.tls_enabled else 'http'}://{self.api_host}:{self.api_port}"

    @property
    def mqtt_broker_port(self) -> int:
        """The port our MQTT clients connect to: the TLS listener when TLS is on."""
        return self.mqtt_tls_port if self.tls_enabled else self.mqtt_port

    @property
    def vtn_url(self) -> str:
        """The VTN's OpenADR 2.0b base URL (VENs post to `<url>/EiRegisterParty` etc.)."""
        scheme = "https" if self.tls_enabled else "http"
        return f"{scheme}://{self.vtn_host}:{self.vtn_port}/OpenADR2/Simple/2.0b"

    @property
    def requires_production_secrets(self) -> bool:
        """Anything but the local devnet in development needs secrets of its own."""
        return self.environment != "development" or self.chain_id not in LOCAL_DEVNET_CHAIN_IDS

    def _secret_problems(self) -> Iterator[str]:
        keys = {name: getattr(self, name).get_secret_value() for name in ROLE_KEY_SETTINGS}
        keys |= {
            name: getattr(self, name).get_secret_value()
            for name in GOVERNANCE_KEY_SETTINGS
            if getattr(self, name).get_secret_value()
        }
        for name, value in keys.items():
            problem = private_key_problem(f"GRIDLEDGER_{name.upper()}", value)
            if problem:
                yield problem
        yield from shared_key_problems({f"GRIDLEDGER_{n.upper()}": v for n, v in keys.items()})
        secret = secret_problem(
            "GRIDLEDGER_SECRET_KEY", self.secret_key.get_secret_value(), DEV_SECRET_KEY
        )
        if secret:
            yield secret
        master = secret_problem(
            "GRIDLEDGER_MASTER_KEY_HEX",
            bytes.fromhex(self.master_key_hex.get_secret_value()),
            bytes.fromhex(DEV_MASTER_KEY),
        )
        if master:
            yield master
        if self.tls == "dev":  # its CA key sits unencrypted next to the server's
            yield "GRIDLEDGER_TLS=dev is the development CA (use GRIDLEDGER_TLS=on or off)"

    @property
    def resolved_broker_url(self) -> str:
        """Celery broker: explicit URL, else Redis if GRIDLEDGER_REDIS_URL is set, else files."""
        if self.celery_broker_url:
            return self.celery_broker_url
        if self.redis_url:
            return self.redis_url
        return "filesystem://"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()

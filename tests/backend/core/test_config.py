"""One Settings object, GRIDLEDGER_ environment variables, no development secret in production."""

import os
import secrets
import subprocess
import sys

import pytest

from backend.core.config import (
    DEV_ADMIN_KEY,
    DEV_DEPLOYER_KEY,
    PROJECT_ROOT,
    ROLE_KEY_SETTINGS,
    Settings,
    get_settings,
)
from backend.core.errors import ConfigurationError, GridLedgerError
from backend.core.secret_policy import LOCAL_DEVNET_CHAIN_IDS
from backend.core.startup import settings_or_exit


def test_defaults_are_embedded(tmp_path):
    settings = Settings(data_dir=tmp_path, _env_file=None)
    assert settings.database_url == f"sqlite:///{tmp_path / 'gridledger.db'}"
    assert settings.deployment_file == tmp_path / "deployment.json"
    assert settings.chain_id == 31337 and settings.rpc_url.startswith("http://127.0.0.1")


def test_environment_variables_use_the_prefix(monkeypatch):
    monkeypatch.setenv("GRIDLEDGER_DATABASE_URL", "postgresql+psycopg://u@db/x")
    monkeypatch.setenv("GRIDLEDGER_API_PORT", "9123")
    monkeypatch.setenv("GRIDLEDGER_CHAIN_ID", "1337")
    settings = Settings(_env_file=None)
    assert (settings.database_url, settings.api_port, settings.chain_id) == (
        "postgresql+psycopg://u@db/x",
        9123,
        1337,
    )
    assert not settings.is_sqlite


def test_production_refuses_development_secrets(monkeypatch):
    monkeypatch.setenv("GRIDLEDGER_ENVIRONMENT", "production")
    with pytest.raises(ConfigurationError) as raised:
        Settings(_env_file=None)
    assert "GRIDLEDGER_SETTLER_PRIVATE_KEY" in str(raised.value)
    assert isinstance(raised.value, GridLedgerError)


ANVIL_ACCOUNT_7 = "4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356"


def real_secrets() -> dict[str, str]:
    return {
        **{name: "0x" + secrets.token_hex(32) for name in ROLE_KEY_SETTINGS},
        "secret_key": secrets.token_urlsafe(32),
        "master_key_hex": secrets.token_hex(32),
    }


def test_production_accepts_real_secrets():
    chosen = real_secrets()
    settings = Settings(_env_file=None, environment="production", chain_id=1, **chosen)
    assert settings.settler_private_key.get_secret_value() == chosen["settler_private_key"]
    assert chosen["settler_private_key"][2:] not in repr(settings)  # secrets never print
    # the API needs neither the deployer's nor the admin's key; the timelock waits two days
    assert settings.deployer_private_key.get_secret_value() == ""
    assert settings.admin_private_key.get_secret_value() == ""
    assert settings.timelock_min_delay_s == 2 * 86_400


def test_the_devnet_fills_the_governance_keys_and_a_short_delay():
    settings = Settings(_env_file=None)
    assert settings.deployer_private_key.get_secret_value() == DEV_DEPLOYER_KEY
    assert settings.admin_private_key.get_secret_value() == DEV_ADMIN_KEY
    assert settings.timelock_min_delay_s == 60


def test_governance_keys_are_checked_when_set_and_must_not_be_a_role_key():
    chosen = real_secrets()
    with pytest.raises(ConfigurationError, match="GRIDLEDGER_ADMIN_PRIVATE_KEY is a public"):
        Settings(_env_file=None, environment="staging", admin_private_key=DEV_ADMIN_KEY, **chosen)
    with pytest.raises(ConfigurationError) as shared:
        Settings(
            _env_file=None,
            environment="staging",
            **{**chosen, "admin_private_key": chosen["registrar_private_key"]},
        )
    assert (
        "GRIDLEDGER_REGISTRAR_PRIVATE_KEY and GRIDLEDGER_ADMIN_PRIVATE_KEY are the same key"
        in str(shared.value)
    )


def test_the_api_refuses_to_hold_the_admin_key_outside_the_devnet(monkeypatch, capsys):
    for name, value in {
        **real_secrets(),
        "admin_private_key": "0x" + secrets.token_hex(32),
    }.items():
        monkeypatch.setenv(f"GRIDLEDGER_{name.upper()}", value)
    monkeypatch.setenv("GRIDLEDGER_ENVIRONMENT", "production")
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as exited:
            settings_or_exit("api")
        assert exited.value.code == 2
        line = capsys.readouterr().err.strip()
        assert line.startswith("api: refusing to start with GRIDLEDGER_ADMIN_PRIVATE_KEY set")
        assert settings_or_exit("admin", governance=True).admin_private_key.get_secret_value()
    finally:
        get_settings.cache_clear()


def test_another_chain_refuses_development_secrets_even_in_development():
    with pytest.raises(ConfigurationError) as raised:
        Settings(_env_file=None, chain_id=1)
    line = str(raised.value)
    assert "\n" not in line and line.startswith("refusing to start on chain 1 (development)")
    for name in ROLE_KEY_SETTINGS:
        assert f"GRIDLEDGER_{name.upper()} is a public development key" in line
    assert "GRIDLEDGER_SECRET_KEY is the development value" in line
    assert "GRIDLEDGER_MASTER_KEY_HEX is the development value" in line


def test_local_devnet_chains_keep_the_embedded_defaults():
    for chain_id in LOCAL_DEVNET_CHAIN_IDS:
        assert Settings(_env_file=None, chain_id=chain_id).chain_id == chain_id


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # account 7 of Anvil's mnemonic: not one of our five defaults, public all the same
        (
            {"operator_private_key": "0x" + ANVIL_ACCOUNT_7},
            "GRIDLEDGER_OPERATOR_PRIVATE_KEY is a public development key",
        ),
        (
            {"settler_private_key": "0x" + "11" * 32},
            "GRIDLEDGER_SETTLER_PRIVATE_KEY does not look random",
        ),
        (
            {"issuer_private_key": "0x" + "ff" * 32},
            "GRIDLEDGER_ISSUER_PRIVATE_KEY is not a 32-byte",
        ),
        ({"registrar_private_key": "0xabc"}, "GRIDLEDGER_REGISTRAR_PRIVATE_KEY is not a 32-byte"),
        (
            {"secret_key": secrets.token_urlsafe(16)},
            "GRIDLEDGER_SECRET_KEY is shorter than 32 bytes",
        ),
        ({"secret_key": "password" * 5}, "GRIDLEDGER_SECRET_KEY does not look random"),
        ({"master_key_hex": "01" * 32}, "GRIDLEDGER_MASTER_KEY_HEX does not look random"),
    ],
)
def test_weak_secrets_are_refused_outside_the_devnet(change, expected):
    with pytest.raises(ConfigurationError, match=expected):
        Settings(_env_file=None, environment="staging", **{**real_secrets(), **change})


@pytest.mark.parametrize(
    ("module", "component"),
    [
        ("indexer", "indexer"),
        ("backend", "api"),
        ("backend.workers", "workers"),
        ("backend.workers.beat", "beat"),
    ],
)
def test_components_refuse_to_start_with_one_line(tmp_path, module, component):
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("GRIDLEDGER_")
    }
    environment |= {"GRIDLEDGER_CHAIN_ID": "10", "GRIDLEDGER_DATA_DIR": str(tmp_path)}
    finished = subprocess.run(
        [sys.executable, "-m", module],
        env=environment,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 2, finished.stderr
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1, finished.stderr
    assert lines[0].startswith(f"{component}: refusing to start on chain 10 (development): ")
    assert "GRIDLEDGER_SETTLER_PRIVATE_KEY is a public development key" in lines[0]


def test_invalid_values_are_rejected():
    with pytest.raises(ValueError, match="api_port"):
        Settings(_env_file=None, api_port=70_000)


def test_several_api_workers_need_redis():
    with pytest.raises(ConfigurationError, match="GRIDLEDGER_REDIS_URL"):
        Settings(_env_file=None, api_workers=2)
    assert (
        Settings(_env_file=None, api_workers=2, redis_url="redis://127.0.0.1:6379/0").api_workers
        == 2
    )

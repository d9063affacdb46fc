"""One Settings object, GRIDLEDGER_ environment variables, no development secret in production."""

import pytest

from backend.core.config import DEV_DEPLOYER_KEY, Settings
from backend.core.errors import ConfigurationError, GridLedgerError


def test_defaults_are_embedded(tmp_path):
    settings = Settings(data_dir=tmp_path, _env_file=None)
    assert settings.database_url == f"sqlite:///{tmp_path / 'gridledger.db'}"
    assert settings.deployment_file == tmp_path / "deployment.json"
    assert settings.chain_id == 31337 and settings.rpc_url.startswith("http://127.0.0.1")


def test_environment_variables_use_the_prefix(monkeypatch):
    monkeypatch.setenv("GRIDLEDGER_DATABASE_URL", "postgresql+psycopg://u@db/x")
    monkeypatch.setenv("GRIDLEDGER_API_PORT", "9123")
    monkeypatch.setenv("GRIDLEDGER_CHAIN_ID", "73799")
    settings = Settings(_env_file=None)
    assert (settings.database_url, settings.api_port, settings.chain_id) == (
        "postgresql+psycopg://u@db/x",
        9123,
        73799,
    )
    assert not settings.is_sqlite


def test_production_refuses_development_secrets(monkeypatch):
    monkeypatch.setenv("GRIDLEDGER_ENVIRONMENT", "production")
    with pytest.raises(ConfigurationError) as raised:
        Settings(_env_file=None)
    assert "GRIDLEDGER_DEPLOYER_PRIVATE_KEY" in str(raised.value)
    assert isinstance(raised.value, GridLedgerError)


def test_production_accepts_real_secrets():
    settings = Settings(
        _env_file=None,
        environment="production",
        deployer_private_key="0x" + "11" * 32,
        settler_private_key="0x" + "22" * 32,
        operator_private_key="0x" + "33" * 32,
        issuer_private_key="0x" + "44" * 32,
        registrar_private_key="0x" + "55" * 32,
        secret_key="s3cret-from-vault",
        master_key_hex="ab" * 32,
    )
    assert settings.deployer_private_key.get_secret_value() != DEV_DEPLOYER_KEY
    assert "11" * 32 not in repr(settings)  # secrets never print


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

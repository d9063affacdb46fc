"""`python -m backend.admin` (typer's CliRunner) on a fresh deployment: propose, list with the
ETA, execute refused before the delay and done after it."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner
from web3 import Web3

from backend.admin.cli import app
from backend.admin.timelock import role_id
from backend.chain.transactions import signer
from backend.core.config import Settings, get_settings
from scripts.deploy import deploy_all


@pytest.fixture
def admin_cli(anvil, tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDLEDGER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GRIDLEDGER_RPC_URL", anvil.rpc_url)
    get_settings.cache_clear()
    settings = Settings(_env_file=None, data_dir=tmp_path, rpc_url=anvil.rpc_url)
    w3 = Web3(Web3.HTTPProvider(anvil.rpc_url))
    deployment = deploy_all(w3, settings)
    runner = CliRunner()

    def run(*args: str, code: int = 0):
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, (args, result.stdout, result.stderr, result.exception)
        return result

    run.w3, run.deployment, run.settings = w3, deployment, settings
    yield run
    get_settings.cache_clear()


def test_revoke_through_the_command_after_the_delay(admin_cli):
    w3, registry = admin_cli.w3, admin_cli.deployment.contracts["RECRegistry"]
    contract = w3.eth.contract(address=registry.address, abi=registry.abi)
    registrar = signer(admin_cli.settings.registrar_private_key.get_secret_value()).address
    assert "no pending operations" in admin_cli("list").stdout

    proposed = json.loads(
        admin_cli("propose", "revoke-role", "REGISTRAR_ROLE", registrar, "--json").stdout
    )
    assert proposed["contract"] == "RECRegistry" and proposed["state"] == "waiting"
    assert proposed["description"] == f"revokeRole(REGISTRAR_ROLE, {registrar})"
    listed = admin_cli("list").stdout
    assert proposed["id"] in listed and "waiting" in listed and "UTC" in listed

    early = admin_cli("execute", proposed["id"], code=1)
    assert "is not ready: its delay ends" in early.stderr
    assert contract.functions.hasRole(role_id("REGISTRAR_ROLE"), registrar).call()

    w3.provider.make_request("evm_increaseTime", [60])
    w3.provider.make_request("evm_mine", [])
    assert "executed " + proposed["id"] in admin_cli("execute", proposed["id"]).stdout
    assert not contract.functions.hasRole(role_id("REGISTRAR_ROLE"), registrar).call()
    assert "no pending operations" in admin_cli("list").stdout


def test_unknown_roles_and_ambiguous_admin_role_are_refused(admin_cli):
    someone = "0x" + "ab" * 20
    wrong = admin_cli("propose", "grant-role", "KING_ROLE", someone, code=1)
    assert "unknown role KING_ROLE" in wrong.stderr
    ambiguous = admin_cli("propose", "grant-role", "DEFAULT_ADMIN_ROLE", someone, code=1)
    assert "name one with --contract" in ambiguous.stderr
    bad_id = admin_cli("execute", "0x1234", code=1)
    assert "is not an operation id" in bad_id.stderr

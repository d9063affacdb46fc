"""`make run`'s devnet: Anvil from npm, deployment, and resuming the same chain on a second run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from web3 import Web3

from backend.chain.anvil import free_port
from backend.core.config import PROJECT_ROOT, Settings
from backend.workers.app import create_celery
from scripts.devnet import component_env

ROLE_HOLDERS = {"SETTLER_ROLE": "settler", "OPERATOR_ROLE": "operator"}

pytestmark = pytest.mark.anvil  # `python -m scripts.devnet` starts its own Anvil


def run_devnet(data_dir, rpc_url, **extra_env):
    env = {
        **os.environ,
        "GRIDLEDGER_DATA_DIR": str(data_dir),
        "GRIDLEDGER_RPC_URL": rpc_url,
        **extra_env,
    }
    return subprocess.run(
        [sys.executable, "-m", "scripts.devnet", "--exit-after-deploy"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_devnet_deploys_then_resumes_the_same_chain(tmp_path):
    rpc_url = f"http://127.0.0.1:{free_port()}"
    first = run_devnet(tmp_path, rpc_url)
    assert first.returncode == 0, first.stderr
    assert "deployed at block" in first.stdout
    deployment = json.loads((tmp_path / "deployment.json").read_text())
    assert set(deployment["contracts"]) == {
        "GridUSD",
        "RECRegistry",
        "EnergyMarket",
        "DemandResponse",
    }
    assert (tmp_path / "anvil-state.json").is_file(), "anvil must save its state on exit"

    second = run_devnet(tmp_path, rpc_url)
    assert second.returncode == 0, second.stderr
    assert "resumed the existing deployment" in second.stdout
    assert json.loads((tmp_path / "deployment.json").read_text()) == deployment

    assert (tmp_path / "anvil-state.json.good").is_file(), "the last loadable state is kept"
    reset = run_devnet(tmp_path, rpc_url, RESET="1")
    assert reset.returncode == 0, reset.stderr
    assert "deployed at block" in reset.stdout
    assert not (tmp_path / "anvil-state.json.good").exists(), "RESET=1 forgets the old chain"


def test_deployment_grants_roles_on_anvil(anvil, tmp_path):
    from backend.core.config import Settings
    from scripts.deploy import deploy_all, role_id

    settings = Settings(_env_file=None, data_dir=tmp_path, rpc_url=anvil.rpc_url)
    w3 = Web3(Web3.HTTPProvider(anvil.rpc_url))
    deployment = deploy_all(w3, settings)
    market = deployment.contracts["EnergyMarket"]
    contract = w3.eth.contract(address=market.address, abi=market.abi)
    for role, holder in ROLE_HOLDERS.items():
        assert contract.functions.hasRole(role_id(role), deployment.roles[holder]).call()
    assert not contract.functions.hasRole(
        role_id("SETTLER_ROLE"), deployment.roles["operator"]
    ).call()
    assert contract.functions.paymentToken().call() == deployment.contracts["GridUSD"].address
    assert (tmp_path / "deployment.json").is_file()
    dr = deployment.contracts["DemandResponse"]
    dr_roles = w3.eth.contract(address=dr.address, abi=dr.abi).functions
    assert dr_roles.paymentToken().call() == deployment.contracts["GridUSD"].address
    assert dr_roles.hasRole(role_id("SETTLER_ROLE"), deployment.roles["settler"]).call()
    assert dr_roles.hasRole(role_id("DEFAULT_ADMIN_ROLE"), deployment.roles["timelock"]).call()
    assert not dr_roles.hasRole(role_id("DEFAULT_ADMIN_ROLE"), deployment.roles["minter"]).call()


def test_deployment_grants_the_meter_data_provider_role_when_configured(anvil, tmp_path):
    from backend.core.config import Settings
    from scripts.deploy import deploy_all, role_id

    provider = "0x" + "7d" * 20
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        rpc_url=anvil.rpc_url,
        meter_data_provider_address=provider,
    )
    w3 = Web3(Web3.HTTPProvider(anvil.rpc_url))
    deployment = deploy_all(w3, settings)
    registry = deployment.contracts["RECRegistry"]
    contract = w3.eth.contract(address=registry.address, abi=registry.abi)
    role = role_id("METER_DATA_PROVIDER_ROLE")
    assert contract.functions.hasRole(role, w3.to_checksum_address(provider)).call()
    assert deployment.roles["meter_data_provider"] == w3.to_checksum_address(provider)
    assert not contract.functions.hasRole(role, deployment.roles["registrar"]).call()


def test_simulated_runs_give_devices_two_chain_slots_to_acknowledge(monkeypatch):
    """Under the simulator chain time jumps a slot at a time: a 60 s deadline would make an
    acknowledgement late whenever a jump falls between command and answer."""
    monkeypatch.delenv("GRIDLEDGER_VPP_ACK_TIMEOUT_S", raising=False)
    simulated = component_env(Settings(_env_file=None, simulate=True))
    assert simulated["GRIDLEDGER_CLOCK"] == "chain"
    assert simulated["GRIDLEDGER_VPP_ACK_TIMEOUT_S"] == "1800"
    chosen = component_env(Settings(_env_file=None, simulate=True, vpp_ack_timeout_s=30))
    assert "GRIDLEDGER_VPP_ACK_TIMEOUT_S" not in chosen  # an operator's choice is left alone
    assert "GRIDLEDGER_VPP_ACK_TIMEOUT_S" not in component_env(
        Settings(_env_file=None, simulate=False)
    )


def test_simulated_runs_leave_the_vpps_day_to_the_neighbourhood(monkeypatch):
    """The simulated aggregator plans (forecast, optimise, dispatch) and trades its VPP's day
    itself: the beat's daily optimisation and trading would plan and sell it a second time."""
    for name in ("GRIDLEDGER_VPP_DAILY_BEAT", "GRIDLEDGER_VPP_TRADING_BEAT"):
        monkeypatch.delenv(name, raising=False)
    simulated = component_env(Settings(_env_file=None, simulate=True))
    assert simulated["GRIDLEDGER_VPP_DAILY_BEAT"] == "false"
    assert simulated["GRIDLEDGER_VPP_TRADING_BEAT"] == "false"
    for name in ("GRIDLEDGER_VPP_DAILY_BEAT", "GRIDLEDGER_VPP_TRADING_BEAT"):
        monkeypatch.setenv(name, simulated[name])
    beat = create_celery(Settings(_env_file=None)).conf.beat_schedule  # the beat's, from its env
    assert "optimize-vpps-daily" not in beat and "trade-vpps" not in beat
    assert beat["allocate-vpp-trades"]["task"] == "vpp.allocate"
    for name in ("GRIDLEDGER_VPP_DAILY_BEAT", "GRIDLEDGER_VPP_TRADING_BEAT"):
        monkeypatch.delenv(name)
    chosen = component_env(Settings(_env_file=None, simulate=True, vpp_daily_beat=True))
    assert "GRIDLEDGER_VPP_DAILY_BEAT" not in chosen  # an operator's choice is left alone
    assert "GRIDLEDGER_VPP_DAILY_BEAT" not in component_env(
        Settings(_env_file=None, simulate=False)
    )

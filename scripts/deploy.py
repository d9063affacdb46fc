"""Deploy GridUSD, RECRegistry, EnergyMarket, DemandResponse and the admin timelock, grant the
operational roles, hand DEFAULT_ADMIN_ROLE to the timelock, write the deployment file.

`ape run deploy [--network ethereum:local:foundry]` uses Ape's connected provider;
`scripts/devnet.py` calls `deploy_all` with a plain Web3 on the Anvil it started.
Transactions are signed with keys from settings, so the same code serves every network.

After deployment the deployer key holds no admin role anywhere (it keeps GridUSD's
MINTER_ROLE: the test token's faucet). Every later role or parameter change is scheduled on the
timelock by the admin key and waits `timelock_min_delay_s` (`python -m backend.admin`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import Web3

from backend.admin.timelock import role_id
from backend.chain.artifacts import load_artifact
from backend.chain.deployment import DeployedContract, Deployment
from backend.chain.transactions import deploy_contract, signer, transact
from backend.core.config import Settings
from backend.core.errors import ConfigurationError, GridLedgerError


class DeploymentFailed(GridLedgerError):
    """A contract creation was mined without creating a contract."""


CERTIFICATE_URI = "https://gridledger.example/certificates/{id}.json"
DEFAULT_ADMIN_ROLE = role_id("DEFAULT_ADMIN_ROLE")
TIMELOCK = "GridLedgerTimelock"
MIN_PRODUCTION_DELAY_S = 86_400  # outside the devnet: at least a day to notice a bad proposal


def _deploy(
    w3: Web3, deployer: LocalAccount, name: str, *args: str | int | bytes | list[str]
) -> DeployedContract:
    artifact = load_artifact(name)
    receipt = deploy_contract(w3, deployer, artifact.abi, artifact.bytecode, *args)
    address = receipt["contractAddress"]
    if address is None:
        raise DeploymentFailed(f"deploying {name} created no contract")
    return DeployedContract(address=address, block_number=receipt["blockNumber"], abi=artifact.abi)


def admin_address(config: Settings) -> str:
    """The timelock's proposer and executor: `admin_address`, else the admin key's address."""
    if config.admin_address:
        return to_checksum_address(config.admin_address)
    key = config.admin_private_key.get_secret_value()
    if not key:
        raise ConfigurationError(
            "deploying needs the timelock admin: set GRIDLEDGER_ADMIN_ADDRESS (or "
            "GRIDLEDGER_ADMIN_PRIVATE_KEY)"
        )
    return signer(key).address


def timelock_delay(config: Settings) -> int:
    delay = config.timelock_min_delay_s
    assert delay is not None  # Settings fills it
    if config.requires_production_secrets and delay < MIN_PRODUCTION_DELAY_S:
        raise ConfigurationError(
            f"GRIDLEDGER_TIMELOCK_MIN_DELAY_S={delay} is under a day outside the local devnet"
        )
    return delay


def deploy_all(w3: Web3, config: Settings) -> Deployment:
    """Deploy the contracts and the timelock, grant each role to the address of its settings
    key, then move DEFAULT_ADMIN_ROLE from the deployer to the timelock."""
    deployer_key = config.deployer_private_key.get_secret_value()
    if not deployer_key:
        raise ConfigurationError("deploying needs GRIDLEDGER_DEPLOYER_PRIVATE_KEY")
    deployer = signer(deployer_key)
    admin = admin_address(config)
    delay = timelock_delay(config)
    role_holders: dict[str, str] = {
        "settler": signer(config.settler_private_key.get_secret_value()).address,
        "operator": signer(config.operator_private_key.get_secret_value()).address,
        "issuer": signer(config.issuer_private_key.get_secret_value()).address,
        "registrar": signer(config.registrar_private_key.get_secret_value()).address,
        "minter": deployer.address,
        "admin": admin,
    }
    token = _deploy(w3, deployer, "GridUSD", deployer.address)
    registry = _deploy(w3, deployer, "RECRegistry", deployer.address, CERTIFICATE_URI)
    market = _deploy(
        w3,
        deployer,
        "EnergyMarket",
        deployer.address,
        token.address,
        registry.address,
        config.tolerance_bps,
        config.penalty_bps,
        config.reclaim_grace_period_s,
    )
    demand_response = _deploy(w3, deployer, "DemandResponse", deployer.address, token.address)
    # admin = address(0): the timelock administers its own roles, through its own delay
    timelock = _deploy(w3, deployer, TIMELOCK, delay, [admin], [admin], "0x" + "00" * 20)
    role_holders["timelock"] = timelock.address
    grants = [
        (market, "SETTLER_ROLE", role_holders["settler"]),
        (market, "OPERATOR_ROLE", role_holders["operator"]),
        (demand_response, "SETTLER_ROLE", role_holders["settler"]),
        (registry, "ISSUER_ROLE", role_holders["issuer"]),
        (registry, "REGISTRAR_ROLE", role_holders["registrar"]),
    ]
    if config.meter_data_provider_address:
        provider = to_checksum_address(config.meter_data_provider_address)
        role_holders["meter_data_provider"] = provider
        grants.append((registry, "METER_DATA_PROVIDER_ROLE", provider))
    administered = (token, registry, market, demand_response)
    grants += [(c, "DEFAULT_ADMIN_ROLE", timelock.address) for c in administered]
    for deployed, role, holder in grants:
        contract = w3.eth.contract(address=to_checksum_address(deployed.address), abi=deployed.abi)
        transact(w3, deployer, contract.functions.grantRole(role_id(role), holder))
    for deployed in administered:  # last: the grants above needed it
        contract = w3.eth.contract(address=to_checksum_address(deployed.address), abi=deployed.abi)
        transact(
            w3, deployer, contract.functions.renounceRole(DEFAULT_ADMIN_ROLE, deployer.address)
        )
    deployment = Deployment(
        chain_id=w3.eth.chain_id,
        block_number=token.block_number,
        genesis_hash=w3.eth.get_block(0)["hash"].to_0x_hex(),
        deployed_at=datetime.now(UTC),
        contracts={
            "GridUSD": token,
            "RECRegistry": registry,
            "EnergyMarket": market,
            "DemandResponse": demand_response,
        },
        roles=role_holders,
        timelock=timelock,
    )
    deployment.write(config.deployment_file)
    return deployment


def main() -> None:  # `ape run deploy`
    from ape import chain

    from backend.core.startup import settings_or_exit

    config = settings_or_exit("deploy", governance=True)
    deployment = deploy_all(chain.provider.web3, config)
    for name, deployed in deployment.contracts.items():
        print(f"{name:<13} {deployed.address}  (block {deployed.block_number})")
    assert deployment.timelock is not None
    print(f"{'Timelock':<13} {deployment.timelock.address}  (admin of every contract)")
    print(f"deployment file: {config.deployment_file}")

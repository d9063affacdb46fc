"""Deploy GridUSD, RECRegistry and EnergyMarket, grant roles, write the deployment file.

`ape run deploy [--network ethereum:local:foundry]` uses Ape's connected provider;
`scripts/devnet.py` calls `deploy_all` with a plain Web3 on the Anvil it started.
Transactions are signed with keys from settings, so the same code serves every network.
"""

from __future__ import annotations

from datetime import UTC, datetime

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import Web3

from backend.chain.artifacts import load_artifact
from backend.chain.deployment import DeployedContract, Deployment
from backend.chain.transactions import deploy_contract, signer, transact
from backend.core.config import Settings, get_settings
from backend.core.errors import GridLedgerError


class DeploymentFailed(GridLedgerError):
    """A contract creation was mined without creating a contract."""


CERTIFICATE_URI = "https://gridledger.example/certificates/{id}.json"


def role_id(name: str) -> bytes:
    return Web3.keccak(text=name)


def _deploy(
    w3: Web3, deployer: LocalAccount, name: str, *args: str | int | bytes
) -> DeployedContract:
    artifact = load_artifact(name)
    receipt = deploy_contract(w3, deployer, artifact.abi, artifact.bytecode, *args)
    address = receipt["contractAddress"]
    if address is None:
        raise DeploymentFailed(f"deploying {name} created no contract")
    return DeployedContract(address=address, block_number=receipt["blockNumber"], abi=artifact.abi)


def deploy_all(w3: Web3, config: Settings) -> Deployment:
    """Deploy the three contracts and grant each role to the address of its settings key."""
    deployer = signer(config.deployer_private_key.get_secret_value())
    role_holders: dict[str, str] = {
        "settler": signer(config.settler_private_key.get_secret_value()).address,
        "operator": signer(config.operator_private_key.get_secret_value()).address,
        "issuer": signer(config.issuer_private_key.get_secret_value()).address,
        "registrar": signer(config.registrar_private_key.get_secret_value()).address,
        "admin": deployer.address,
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
    grants = [
        (market, "SETTLER_ROLE", role_holders["settler"]),
        (market, "OPERATOR_ROLE", role_holders["operator"]),
        (registry, "ISSUER_ROLE", role_holders["issuer"]),
        (registry, "REGISTRAR_ROLE", role_holders["registrar"]),
    ]
    if config.meter_data_provider_address:
        provider = to_checksum_address(config.meter_data_provider_address)
        role_holders["meter_data_provider"] = provider
        grants.append((registry, "METER_DATA_PROVIDER_ROLE", provider))
    for deployed, role, holder in grants:
        contract = w3.eth.contract(address=to_checksum_address(deployed.address), abi=deployed.abi)
        transact(w3, deployer, contract.functions.grantRole(role_id(role), holder))
    deployment = Deployment(
        chain_id=w3.eth.chain_id,
        block_number=token.block_number,
        genesis_hash=w3.eth.get_block(0)["hash"].to_0x_hex(),
        deployed_at=datetime.now(UTC),
        contracts={"GridUSD": token, "RECRegistry": registry, "EnergyMarket": market},
        roles=role_holders,
    )
    deployment.write(config.deployment_file)
    return deployment


def main() -> None:  # `ape run deploy`
    from ape import chain

    config = get_settings()
    deployment = deploy_all(chain.provider.web3, config)
    for name, deployed in deployment.contracts.items():
        print(f"{name:<13} {deployed.address}  (block {deployed.block_number})")
    print(f"deployment file: {config.deployment_file}")

"""API roles with an on-chain counterpart, kept in step for custodial accounts.

| API role            | contract     | AccessControl role       |
|---------------------|--------------|--------------------------|
| registrar           | RECRegistry  | REGISTRAR_ROLE           |
| issuer              | RECRegistry  | ISSUER_ROLE              |
| operator            | EnergyMarket | OPERATOR_ROLE            |
| meter_data_provider | RECRegistry  | METER_DATA_PROVIDER_ROLE |

`admin` is not mirrored to DEFAULT_ADMIN_ROLE: that role grants every other role and sets
market parameters, so it stays with the deployer key (or whoever governance hands it to).
`participant` needs no role on chain. Wallet accounts are not mirrored either: putting power
on chain in a key the API does not hold is a governance act, done with the admin key
directly, not a side effect of an API role.

Grants and revocations are signed with the deployer key, the contracts' admin after
`scripts/deploy.py`. Where it is not (the admin was handed over), the API role changes alone
and the caller is told why: a custodial key never leaves the API, so its API roles are the
ones that take effect.
"""

from __future__ import annotations

from collections.abc import Iterable

from eth_account import Account as EthAccount
from eth_utils import to_checksum_address
from web3 import Web3

from backend.accounts.models import Role
from backend.accounts.schemas import ChainRoleChange
from backend.chain.contracts import Chain
from backend.chain.transactions import tx_hash_hex
from backend.core.config import Settings

CHAIN_ROLES: dict[Role, tuple[str, str]] = {
    Role.REGISTRAR: ("RECRegistry", "REGISTRAR_ROLE"),
    Role.ISSUER: ("RECRegistry", "ISSUER_ROLE"),
    Role.OPERATOR: ("EnergyMarket", "OPERATOR_ROLE"),
    Role.METER_DATA_PROVIDER: ("RECRegistry", "METER_DATA_PROVIDER_ROLE"),
}
DEFAULT_ADMIN_ROLE = b"\0" * 32


def mirrored(roles: Iterable[str]) -> set[Role]:
    return {Role(r) for r in roles} & CHAIN_ROLES.keys()


def sync_chain_roles(
    chain: Chain, settings: Settings, address: str, roles: set[Role]
) -> tuple[list[ChainRoleChange], str | None]:
    """Grant or revoke on chain so `address` holds exactly the mirrored roles in `roles`.

    Returns the changes sent and, if nothing could be sent, why. Idempotent: roles already
    right on chain are left alone, so a retry after a failure finishes the job.
    """
    contracts = {"RECRegistry": chain.registry, "EnergyMarket": chain.market}
    holder = to_checksum_address(address)
    planned: list[tuple[str, str, bytes, bool]] = []
    for role, (name, role_name) in CHAIN_ROLES.items():
        role_id: bytes = Web3.keccak(text=role_name)
        wanted = role in roles
        if chain.call(contracts[name].functions.hasRole(role_id, holder)) != wanted:
            planned.append((name, role_name, role_id, wanted))
    admin = EthAccount.from_key(settings.deployer_private_key.get_secret_value())
    for name in sorted({name for name, *_ in planned}):
        if not chain.call(contracts[name].functions.hasRole(DEFAULT_ADMIN_ROLE, admin.address)):
            return [], f"the configured deployer key {admin.address} is not the admin of {name}"
    changes: list[ChainRoleChange] = []
    for name, role_name, role_id, wanted in planned:
        functions = contracts[name].functions
        receipt = chain.transact(
            admin, (functions.grantRole if wanted else functions.revokeRole)(role_id, holder)
        )
        changes.append(
            ChainRoleChange(
                contract=name,
                role=role_name,
                granted=wanted,
                tx_hash=tx_hash_hex(receipt),
            )
        )
    return changes, None

"""API roles with an on-chain counterpart, and what the chain would need to match them.

| API role            | contract     | AccessControl role       |
|---------------------|--------------|--------------------------|
| registrar           | RECRegistry  | REGISTRAR_ROLE           |
| issuer              | RECRegistry  | ISSUER_ROLE              |
| operator            | EnergyMarket | OPERATOR_ROLE            |
| meter_data_provider | RECRegistry  | METER_DATA_PROVIDER_ROLE |

The API holds no admin key: DEFAULT_ADMIN_ROLE is the timelock's (`scripts/deploy.py`), so an
API role change never grants or revokes on chain by itself. The API works with its own role
keys (registrar, operator, settler, issuer), so an account's API role takes effect at once;
an on-chain role for the account's own address is a governance act. `plan_chain_roles` lists
the grants and revocations that would make the chain match, each with the admin command
(`python -m backend.admin propose ...`) that schedules it on the timelock.
`admin` is not mirrored (DEFAULT_ADMIN_ROLE stays with the timelock); `participant` needs no
role on chain.
"""

from __future__ import annotations

from collections.abc import Iterable

from eth_utils import to_checksum_address
from web3 import Web3

from backend.accounts.models import Role
from backend.accounts.schemas import ChainRoleChange
from backend.chain.contracts import Chain

CHAIN_ROLES: dict[Role, tuple[str, str]] = {
    Role.REGISTRAR: ("RECRegistry", "REGISTRAR_ROLE"),
    Role.ISSUER: ("RECRegistry", "ISSUER_ROLE"),
    Role.OPERATOR: ("EnergyMarket", "OPERATOR_ROLE"),
    Role.METER_DATA_PROVIDER: ("RECRegistry", "METER_DATA_PROVIDER_ROLE"),
}
ADMIN_COMMAND = "python -m backend.admin"


def mirrored(roles: Iterable[str]) -> set[Role]:
    return {Role(r) for r in roles} & CHAIN_ROLES.keys()


def plan_chain_roles(chain: Chain, address: str, roles: set[Role]) -> list[ChainRoleChange]:
    """The grants and revocations that would make `address` hold exactly the mirrored roles
    in `roles` on chain; roles already right are left out. Reads only: nothing is sent."""
    contracts = {"RECRegistry": chain.registry, "EnergyMarket": chain.market}
    holder = to_checksum_address(address)
    needed: list[ChainRoleChange] = []
    for role, (name, role_name) in CHAIN_ROLES.items():
        wanted = role in roles
        held = chain.call(contracts[name].functions.hasRole(Web3.keccak(text=role_name), holder))
        if held != wanted:
            action = "grant-role" if wanted else "revoke-role"
            needed.append(
                ChainRoleChange(
                    contract=name,
                    role=role_name,
                    granted=wanted,
                    command=f"{ADMIN_COMMAND} propose {action} {role_name} {holder}",
                )
            )
    return needed

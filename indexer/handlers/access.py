"""AccessControl role grants and revocations on any of our contracts."""

from indexer.handlers import Log, on
from indexer.mirror import MirrorState, TableKey


def _role_key(log: Log) -> list[TableKey]:
    return [("role_grants", (log.contract, log.args["role"], log.args["account"]))]


def _set_role(state: MirrorState, log: Log, *, active: bool) -> None:
    state.put(
        "role_grants",
        {
            "contract": log.contract,
            "role": log.args["role"],
            "account": log.args["account"],
            "active": active,
            "changed_by": log.args["sender"],
            "block_number": log.block_number,
        },
    )


@on("*", "RoleGranted", touches=_role_key)
def role_granted(state: MirrorState, log: Log) -> None:
    _set_role(state, log, active=True)


@on("*", "RoleRevoked", touches=_role_key)
def role_revoked(state: MirrorState, log: Log) -> None:
    _set_role(state, log, active=False)

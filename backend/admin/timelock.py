"""Admin operations through the TimelockController: propose, list, execute, cancel.

The timelock holds DEFAULT_ADMIN_ROLE on GridUSD, RECRegistry and EnergyMarket (and on itself),
so every role change is an operation: scheduled by the admin key, public on chain for at least
`getMinDelay()` seconds, then executed. The chain is the record: operations are read back from
the timelock's `CallScheduled`/`CallSalt` logs and its `getOperationState`, nothing is kept
off chain. Each proposal gets a random salt, so the same change can be proposed again later.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Literal, cast

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.types import LogReceipt, TxReceipt

from backend.chain.contracts import Chain
from backend.core.errors import ConfigurationError, InvalidInput, NotFound

TIMELOCK = "Timelock"  # the timelock's name as a `--contract` target
DEFAULT_ADMIN_ROLE = "DEFAULT_ADMIN_ROLE"
# The contract each role lives on; DEFAULT_ADMIN_ROLE exists on all and needs `contract`.
ROLE_CONTRACTS: dict[str, str] = {
    "SETTLER_ROLE": "EnergyMarket",
    "OPERATOR_ROLE": "EnergyMarket",
    "ISSUER_ROLE": "RECRegistry",
    "REGISTRAR_ROLE": "RECRegistry",
    "METER_DATA_PROVIDER_ROLE": "RECRegistry",
    "MINTER_ROLE": "GridUSD",
    "PROPOSER_ROLE": TIMELOCK,
    "EXECUTOR_ROLE": TIMELOCK,
    "CANCELLER_ROLE": TIMELOCK,
}
ROLE_NAMES = [*ROLE_CONTRACTS, DEFAULT_ADMIN_ROLE]
NO_PREDECESSOR = b"\0" * 32


class OperationState(IntEnum):
    """TimelockController.OperationState, in its order."""

    UNSET = 0
    WAITING = 1
    READY = 2
    DONE = 3


def role_id(name: str) -> bytes:
    return b"\0" * 32 if name == DEFAULT_ADMIN_ROLE else Web3.keccak(text=name)


@dataclass(frozen=True)
class Operation:
    id: str  # 0x-hex hashOperation(target, value, data, predecessor, salt)
    contract: str  # name of the target (or its address when not ours)
    description: str  # e.g. "grantRole(OPERATOR_ROLE, 0x…)"
    target: str
    value: int
    data: bytes
    predecessor: bytes
    salt: bytes
    eta: int  # chain timestamp from which it may execute (0 once cancelled, 1 once done)
    state: OperationState

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "contract": self.contract,
            "description": self.description,
            "target": self.target,
            "eta": self.eta,
            "state": self.state.name.lower(),
        }


class Timelock:
    """The deployment's timelock and the contracts it administers, bound on one `Chain`."""

    def __init__(self, chain: Chain):
        timelock = chain.deployment.timelock
        if timelock is None:
            raise ConfigurationError(
                "this deployment has no timelock (deployed before admin power left the API): "
                "redeploy (make run RESET=1)"
            )
        self.chain = chain
        self.from_block = timelock.block_number
        self.contract = chain.w3.eth.contract(
            address=to_checksum_address(timelock.address), abi=timelock.abi
        )
        self.targets: dict[str, Contract] = {
            "GridUSD": chain.token,
            "RECRegistry": chain.registry,
            "EnergyMarket": chain.market,
            TIMELOCK: self.contract,
        }
        if chain.demand_response is not None:  # SETTLER_ROLE there: `--contract DemandResponse`
            self.targets["DemandResponse"] = chain.demand_response

    # ------------------------------------------------------------------ proposing

    def role_call(
        self,
        action: Literal["grant", "revoke"],
        role: str,
        account: str,
        contract: str | None = None,
    ) -> tuple[str, bytes]:
        """Target and calldata of `grantRole`/`revokeRole(role, account)`."""
        if role not in ROLE_NAMES:
            raise InvalidInput(f"unknown role {role}; known: {', '.join(ROLE_NAMES)}")
        name = contract or ROLE_CONTRACTS.get(role)
        if name is None:
            raise InvalidInput(f"{role} exists on every contract: name one with --contract")
        if name not in self.targets:
            raise InvalidInput(f"unknown contract {name}; known: {', '.join(self.targets)}")
        try:
            holder = to_checksum_address(account)
        except ValueError as exc:
            raise InvalidInput(f"{account!r} is not an address") from exc
        target = self.targets[name]
        data = target.encode_abi(f"{action}Role", args=[role_id(role), holder])
        return target.address, bytes(HexBytes(data))

    def propose(
        self, admin: LocalAccount, target: str, data: bytes, *, delay: int | None = None
    ) -> Operation:
        """Schedule `target.call(data)` after `delay` seconds (default: the minimum)."""
        delay = self.chain.call(self.contract.functions.getMinDelay()) if delay is None else delay
        salt = os.urandom(32)
        self.chain.transact(
            admin,
            self.contract.functions.schedule(target, 0, data, NO_PREDECESSOR, salt, delay),
        )
        op_id = self.chain.call(
            self.contract.functions.hashOperation(target, 0, data, NO_PREDECESSOR, salt)
        )
        return self.operation("0x" + bytes(op_id).hex())

    # ------------------------------------------------------------------ reading

    def _logs(self, event: str, op_id: str | None = None) -> list[LogReceipt]:
        """The timelock's `event` logs since its deployment (only `op_id`'s, if given)."""
        abi = cast(list[dict[str, Any]], self.contract.abi)  # web3's TypedDicts differ per kind
        item = next(i for i in abi if i.get("type") == "event" and i["name"] == event)
        types = ",".join(i["type"] for i in item["inputs"])
        topics: list[Any] = [Web3.to_hex(Web3.keccak(text=f"{event}({types})"))]
        if op_id is not None:
            topics.append(op_id)
        return list(
            self.chain.w3.eth.get_logs(
                {
                    "address": self.contract.address,
                    "fromBlock": self.from_block,
                    "toBlock": "latest",
                    "topics": topics,
                }
            )
        )

    def operation(self, op_id: str) -> Operation:
        """One scheduled operation, read back from its logs and the timelock's state."""
        op_id = _normalized_id(op_id)
        scheduled = self._logs("CallScheduled", op_id)
        if not scheduled:
            raise NotFound(f"no operation {op_id} was scheduled on the timelock")
        return self._operation(scheduled[0])

    def _operation(self, log: LogReceipt) -> Operation:
        args = self.contract.events.CallScheduled().process_log(log)["args"]
        op_id = "0x" + bytes(args["id"]).hex()
        salts = self._logs("CallSalt", op_id)
        salt = (
            bytes(self.contract.events.CallSalt().process_log(salts[0])["args"]["salt"])
            if salts
            else NO_PREDECESSOR
        )
        state = OperationState(self.chain.call(self.contract.functions.getOperationState(op_id)))
        eta = self.chain.call(self.contract.functions.getTimestamp(op_id))
        contract, description = self._describe(args["target"], bytes(args["data"]))
        return Operation(
            id=op_id,
            contract=contract,
            description=description,
            target=args["target"],
            value=args["value"],
            data=bytes(args["data"]),
            predecessor=bytes(args["predecessor"]),
            salt=salt,
            eta=eta,
            state=state,
        )

    def _describe(self, target: str, data: bytes) -> tuple[str, str]:
        for name, contract in self.targets.items():
            if contract.address.lower() == target.lower():
                try:
                    function, args = contract.decode_function_input(data)
                except ValueError:
                    return name, "0x" + data.hex()
                shown = [_role_name(v) if k == "role" else v for k, v in args.items()]
                return name, f"{function.fn_name}({', '.join(map(str, shown))})"
        return target, "0x" + data.hex()

    def pending(self) -> list[Operation]:
        """Operations scheduled and neither executed nor cancelled, soonest first."""
        operations = [self._operation(log) for log in self._logs("CallScheduled")]
        waiting = [
            op for op in operations if op.state in (OperationState.WAITING, OperationState.READY)
        ]
        return sorted(waiting, key=lambda op: op.eta)

    # ------------------------------------------------------------------ executing

    def execute(self, executor: LocalAccount, op_id: str) -> TxReceipt:
        """Run a ready operation; before its ETA the timelock reverts with
        `TimelockUnexpectedOperationState` (decoded as `ContractReverted`)."""
        op = self.operation(op_id)
        return self.chain.transact(
            executor,
            self.contract.functions.execute(op.target, op.value, op.data, op.predecessor, op.salt),
        )

    def cancel(self, canceller: LocalAccount, op_id: str) -> TxReceipt:
        return self.chain.transact(canceller, self.contract.functions.cancel(_normalized_id(op_id)))


def _normalized_id(op_id: str) -> str:
    raw = op_id.lower().removeprefix("0x")
    if len(raw) != 64 or any(c not in "0123456789abcdef" for c in raw):
        raise InvalidInput(f"{op_id!r} is not an operation id (32 bytes, hex)")
    return "0x" + raw


def _role_name(value: bytes) -> str:
    for name in ROLE_NAMES:
        if role_id(name) == bytes(value):
            return name
    return "0x" + bytes(value).hex()

"""How DR records are named on chain (DemandResponse): program and event ids are the backend's
UUIDs, their 16 bytes left-aligned in a bytes32."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from web3.contract import Contract

ZERO_ADDRESS = "0x" + "00" * 20


def bytes32_id(value: uuid.UUID) -> bytes:
    return value.bytes.ljust(32, b"\x00")


@dataclass(frozen=True)
class ProgramOnChain:
    utility: str  # lower-case; the zero address: the program was never created on chain
    closed: bool
    budget: int

    @property
    def exists(self) -> bool:
        return self.utility != ZERO_ADDRESS


def program_on_chain(contract: Contract, program_id: uuid.UUID) -> ProgramOnChain:
    utility, closed, budget = contract.functions.programInfo(bytes32_id(program_id)).call()
    return ProgramOnChain(str(utility).lower(), bool(closed), int(budget))

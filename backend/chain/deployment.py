"""The deployment file: where the contracts live. Written by scripts/deploy.py, read by all."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from backend.core.errors import GridLedgerError


class DeploymentNotFound(GridLedgerError):
    def __init__(self, path: Path):
        super().__init__(f"no deployment file at {path}: run `make run` (or `ape run deploy`)")


class DeployedContract(BaseModel):
    address: str
    block_number: int
    abi: list[dict]


class Deployment(BaseModel):
    chain_id: int
    block_number: int  # first block holding any of our contracts: where indexing starts
    genesis_hash: str
    deployed_at: datetime
    contracts: dict[str, DeployedContract]
    roles: dict[str, str] = {}
    # The TimelockController holding DEFAULT_ADMIN_ROLE on every contract (kept out of
    # `contracts`: nothing indexes or relays to it; `python -m backend.admin` drives it)
    timelock: DeployedContract | None = None

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.model_dump_json(indent=2))
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> Deployment:
        if not path.is_file():
            raise DeploymentNotFound(path)
        return cls.model_validate_json(path.read_text())

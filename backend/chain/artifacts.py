"""Compiled contract types, read from Ape's build manifest (`.build/__local__.json`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from backend.core.config import PROJECT_ROOT
from backend.core.errors import GridLedgerError

BUILD_MANIFEST = PROJECT_ROOT / ".build" / "__local__.json"


class ArtifactNotFound(GridLedgerError):
    def __init__(self, name: str, manifest: Path):
        super().__init__(f"contract {name!r} not compiled in {manifest}: run `make setup`")


@dataclass(frozen=True)
class ContractArtifact:
    name: str
    abi: list[dict]
    bytecode: str


@lru_cache
def _manifest(path: Path) -> dict:
    if not path.is_file():
        raise ArtifactNotFound("*", path)
    return json.loads(path.read_text())


def load_artifact(name: str, manifest: Path = BUILD_MANIFEST) -> ContractArtifact:
    contract_type = _manifest(manifest).get("contractTypes", {}).get(name)
    if contract_type is None:
        raise ArtifactNotFound(name, manifest)
    bytecode = (contract_type.get("deploymentBytecode") or {}).get("bytecode", "")
    return ContractArtifact(name=name, abi=contract_type["abi"], bytecode=bytecode)

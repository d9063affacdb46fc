"""Which readings are verified: signed by the meter's approved key, or vouched for by a
metering data provider (an account holding `meter_data_provider`).

Verification is per batch: the recovery of a signer (~0.2 ms) runs only for readings that
carry a signature, against the EIP-712 domain of the deployed RECRegistry (the deployment
file, read once per change). The same rule as `RECRegistry.isValidReading`: a signature by
the approved meter's key, or by a metering data provider, verifies the reading. Signed values
are the reading's values with absent ones as 0, so a signature moved to another meter,
interval or value recovers another address and verifies nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from backend.chain.deployment import DeployedContract, Deployment, DeploymentNotFound
from backend.core.config import Settings
from backend.meters.models import INTERVAL_SECONDS, MeterStatus
from backend.meters.signing import SignedValues, reading_signer
from backend.meters.validation import MeterLimits, ReadingRejected

SIGNATURE_RE = re.compile(r"^0x[0-9a-fA-F]{130}$")


@dataclass(frozen=True)
class ReadingDomain:
    """Where signatures are checked: the chain and the RECRegistry of the EIP-712 domain."""

    chain_id: int
    registry: str


def reading_domain(settings: Settings) -> ReadingDomain | None:
    """The domain of the current deployment; None without one (no signature can verify)."""
    path = settings.deployment_file
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return None
    return _domain(path, mtime)


@lru_cache(maxsize=4)
def _domain(path: Path, mtime: float) -> ReadingDomain | None:
    try:
        deployment = Deployment.read(path)
    except (DeploymentNotFound, ValueError):
        return None
    registry = deployment.contracts.get("RECRegistry")
    if registry is None:
        return None
    return ReadingDomain(deployment.chain_id, to_checksum_address(registry.address))


def write_domain(path: Path, domain: ReadingDomain) -> Path:
    """A deployment file naming only the registry of `domain`: readings verify against it with
    no chain (an offline checker, tests, benchmarks)."""
    Deployment(
        chain_id=domain.chain_id,
        block_number=0,
        genesis_hash="0x" + "00" * 32,
        deployed_at=datetime.now(UTC),
        contracts={
            "RECRegistry": DeployedContract(address=domain.registry, block_number=0, abi=[])
        },
    ).write(path)
    return path


def parse_signature(value: object) -> bytes | None:
    """The 65 signature bytes of a reading's `signature` field (None when absent)."""
    if value is None:
        return None
    if not isinstance(value, str) or not SIGNATURE_RE.match(value):
        raise ReadingRejected("signature must be 0x + 65 bytes hex (r || s || v)")
    return bytes.fromhex(value[2:])


def signed_values(row: dict[str, Any]) -> SignedValues:
    """What the meter signs for a validated reading row (absent values as 0)."""
    return SignedValues(
        meter_id=bytes.fromhex(row["meter_id"][2:]),
        interval_start=row["interval_start"],
        interval_seconds=INTERVAL_SECONDS,
        import_wh=row["import_wh"] or 0,
        export_wh=row["export_wh"] or 0,
    )


def recover(row: dict[str, Any], signature: bytes, domain: ReadingDomain | None) -> str | None:
    """The address that signed this row's values, None when it cannot be told."""
    if domain is None:
        return None
    return _signer(signed_values(row), signature, domain.chain_id, domain.registry)


@lru_cache(maxsize=16_384)
def _signer(values: SignedValues, signature: bytes, chain_id: int, registry: str) -> str | None:
    """Cached: a redelivered MQTT message or a retried batch repeats the same signed readings."""
    return reading_signer(values, signature, chain_id, registry)


def meter_signed(limits: MeterLimits, signer: str | None) -> bool:
    """Signed with the key the registrar approved for this meter, while it is approved."""
    return (
        signer is not None
        and limits.status == MeterStatus.APPROVED
        and limits.signing_key is not None
        and signer == limits.signing_key
    )


def mark(
    row: dict[str, Any], *, verified: bool, signature: bytes | None, signer: str | None
) -> None:
    row["verified"] = verified
    row["signature"] = None if signature is None else "0x" + signature.hex()
    row["signer"] = signer

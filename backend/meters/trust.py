"""Which readings are verified: signed by the meter's approved key, or vouched for by a
metering data provider (an account holding `meter_data_provider`).

Verification is per batch, by columns (`check_signatures`): the signatures are parsed, the
digests hashed together (signing.reading_digests) under the domain separator of the deployed
RECRegistry (the deployment file, read once per change; the separator computed once per
domain), and only then is each signer recovered by libsecp256k1 (the one inherent cost per
signed reading). The same rule as `RECRegistry.isValidReading`: a signature by
the approved meter's key, or by a metering data provider, verifies the reading. Signed values
are the reading's values with absent ones as 0, so a signature moved to another meter,
interval or value recovers another address and verifies nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from backend.chain.deployment import DeployedContract, Deployment, DeploymentNotFound
from backend.chain.signatures import ecdsa_signer
from backend.core.config import Settings
from backend.meters.batch import Columns
from backend.meters.models import INTERVAL_SECONDS, MeterStatus
from backend.meters.signing import SignedValues, domain_separator, reading_digests
from backend.meters.validation import MeterLimits

SIGNATURE_RE = re.compile(r"^0x[0-9a-fA-F]{130}$")


@dataclass(frozen=True)
class ReadingDomain:
    """Where signatures are checked: the chain and the RECRegistry of the EIP-712 domain."""

    chain_id: int
    registry: str

    @cached_property
    def separator(self) -> bytes:
        """The EIP-712 domain separator (computed once: a domain lives as long as its file)."""
        return domain_separator(self.chain_id, self.registry)


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


def signed_values(row: dict[str, Any]) -> SignedValues:
    """What the meter signs for a validated reading row (absent values as 0)."""
    return SignedValues(
        meter_id=bytes.fromhex(row["meter_id"][2:]),
        interval_start=row["interval_start"],
        interval_seconds=INTERVAL_SECONDS,
        import_wh=row["import_wh"] or 0,
        export_wh=row["export_wh"] or 0,
    )


def meter_signed(limits: MeterLimits, signer: str | None) -> bool:
    """Signed with the key the registrar approved for this meter, while it is approved."""
    return (
        signer is not None
        and limits.status == MeterStatus.APPROVED
        and limits.signing_key is not None
        and signer == limits.signing_key
    )


@dataclass
class Checked:
    """What `check_signatures` found in a batch's columns: the reason of each malformed
    signature (by position in the columns), and the positions of signed rows whose signer is
    not the meter's approved key (verified only if the signer is a metering data provider)."""

    malformed: dict[int, str] = field(default_factory=dict)
    other_signers: list[int] = field(default_factory=list)


def check_signatures(
    rows: Columns,
    meters: dict[str, MeterLimits],
    domain: ReadingDomain | None,
    *,
    provider: bool = False,
) -> Checked:
    """Parse the `raw_signature` of every row and set `signature`; unless the rows come from a
    metering data provider (`provider`: verified anyway), recover each signer, set `signer`
    and mark the rows the meter's approved key signed verified. Digests are hashed by
    columns; a signer recovered before (a redelivered message, a retried batch) is cached."""
    checked = Checked()
    if rows.raw_signature.count(None) == len(rows.raw_signature):  # none signed: in C
        return checked
    signed: list[int] = []
    for position, raw in enumerate(rows.raw_signature):
        if raw is None:
            continue
        if type(raw) is not str or len(raw) != 132 or not SIGNATURE_RE.match(raw):
            checked.malformed[position] = "signature must be 0x + 65 bytes hex (r || s || v)"
            continue
        rows.signature[position] = raw.lower()
        signed.append(position)
    if provider or not signed:
        return checked
    by_id = {limits.meter_id: limits for limits in meters.values()}
    digests: list[bytes | None] = [None] * len(signed)
    if domain is not None:
        digests = reading_digests(
            [rows.meter_id[p] for p in signed],
            [rows.interval_start[p] for p in signed],
            [rows.import_wh[p] for p in signed],
            [rows.export_wh[p] for p in signed],
            domain.separator,
        )
    for position, digest in zip(signed, digests, strict=True):
        signer = None if digest is None else _recovered(digest, rows.signature[position])
        rows.signer[position] = signer
        if meter_signed(by_id[rows.meter_id[position]], signer):
            rows.verified[position] = True
        elif signer is not None:
            checked.other_signers.append(position)
    return checked


@lru_cache(maxsize=16_384)
def _recovered(digest: bytes, signature: str) -> str | None:
    return ecdsa_signer(digest, bytes.fromhex(signature[2:]))

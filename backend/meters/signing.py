"""Meter readings as EIP-712 typed data: what a meter (or a metering data provider) signs.

A reading that settles a trade or issues a certificate must be signed by the meter's approved
key, so anyone holding the reading, the signature and the registry's approval can check it
without trusting us; `RECRegistry.readingDigest`/`isValidReading` verify the same digest on
chain. The domain is `{name: "GridLedger Meters", version: "1", chainId, verifyingContract:
RECRegistry}`, so a signature cannot be replayed on another chain or registry, and the struct
names the meter and the interval, so it cannot be replayed to another meter or interval.
Absent values are signed as 0.

A batch of readings is hashed by columns (`reading_digests`): the ABI words of every struct
are laid out in one numpy array and each is hashed by pysha3's C keccak, a tenth of what
`eth_utils.keccak` (pycryptodome behind two Python wrappers) costs per call. What remains
per signed reading is libsecp256k1's recovery of its signer (backend/meters/trust.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from eth_account import Account
from eth_account.messages import SignableMessage
from eth_utils import keccak, to_checksum_address
from sha3 import keccak_256

from backend.chain import eip712
from backend.chain.eip712 import DOMAIN_FIELDS, type_string, word_encoder
from backend.chain.signatures import ecdsa_signer
from backend.meters.models import INTERVAL_SECONDS

DOMAIN_NAME = "GridLedger Meters"
DOMAIN_VERSION = "1"

READING_FIELDS = [
    {"name": "meterId", "type": "bytes32"},
    {"name": "intervalStart", "type": "uint64"},
    {"name": "intervalSeconds", "type": "uint32"},
    {"name": "importWh", "type": "uint64"},
    {"name": "exportWh", "type": "uint64"},
]
READING_TYPE = type_string("MeterReading", READING_FIELDS)
READING_TYPEHASH = keccak(text=READING_TYPE)
_READING_WORDS = tuple(word_encoder(f["type"]) for f in READING_FIELDS)
_STRUCT_BYTES = 32 * (1 + len(READING_FIELDS))  # typehash, then one word per field


@dataclass(frozen=True)
class SignedValues:
    """The fields of `MeterReading`, in the order of the EIP-712 type."""

    meter_id: bytes
    interval_start: int
    interval_seconds: int
    import_wh: int
    export_wh: int

    def as_tuple(self) -> tuple[bytes, int, int, int, int]:
        """The struct as a contract call argument."""
        return (
            self.meter_id,
            self.interval_start,
            self.interval_seconds,
            self.import_wh,
            self.export_wh,
        )

    def message(self) -> dict[str, Any]:
        """The typed-data message; integers as decimal strings (JavaScript reads them exactly)."""
        return {
            "meterId": "0x" + self.meter_id.hex(),
            "intervalStart": str(self.interval_start),
            "intervalSeconds": str(self.interval_seconds),
            "importWh": str(self.import_wh),
            "exportWh": str(self.export_wh),
        }


def domain_separator(chain_id: int, registry: str) -> bytes:
    return eip712.domain_separator(DOMAIN_NAME, DOMAIN_VERSION, chain_id, registry)


def struct_hash(values: SignedValues) -> bytes:
    """hashStruct(reading); raises ValueError for a value that does not fit its type."""
    fields = (f["name"] for f in READING_FIELDS)
    return keccak(
        READING_TYPEHASH
        + b"".join(
            encode(value, name)
            for encode, value, name in zip(_READING_WORDS, values.as_tuple(), fields, strict=True)
        )
    )


def reading_digests(
    meter_ids: Sequence[str],
    interval_starts: Sequence[int],
    import_wh: Sequence[int | None],
    export_wh: Sequence[int | None],
    separator: bytes,
) -> list[bytes | None]:
    """`reading_digest` of many 15-minute readings (meter ids as 0x + 64 hex, absent values as
    0) under one domain separator, hashed by columns; None where a value does not fit its
    type (such a reading verifies nothing)."""
    n = len(meter_ids)
    try:
        ids = np.frombuffer(bytes.fromhex("".join(m[2:] for m in meter_ids)), np.uint8)
        numbers = np.array(
            [interval_starts, [v or 0 for v in import_wh], [v or 0 for v in export_wh]],
            dtype=np.int64,
        ).reshape(3, n)
    except (ValueError, TypeError, OverflowError):
        ids = np.empty(0, np.uint8)
    if ids.size != 32 * n:  # a malformed id or a value beyond int64: one by one
        return [
            _digest_or_none(*values, separator)
            for values in zip(meter_ids, interval_starts, import_wh, export_wh, strict=True)
        ]
    words = np.zeros((n, _STRUCT_BYTES), np.uint8)
    words[:, :32] = np.frombuffer(READING_TYPEHASH, np.uint8)
    words[:, 32:64] = ids.reshape(n, 32)
    words[:, 124:128] = np.frombuffer(INTERVAL_SECONDS.to_bytes(4, "big"), np.uint8)
    for row, at in ((0, 64), (1, 128), (2, 160)):  # intervalStart, importWh, exportWh
        words[:, at + 24 : at + 32] = numbers[row].astype(">u8").view(np.uint8).reshape(n, 8)
    prefix = b"\x19\x01" + separator
    flat = memoryview(words.tobytes())
    size = _STRUCT_BYTES
    return [
        keccak_256(prefix + keccak_256(flat[i * size : i * size + size]).digest()).digest()
        if fits
        else None
        for i, fits in enumerate((numbers >= 0).all(axis=0).tolist())
    ]


def _digest_or_none(
    meter_id: str, start: int, import_wh: int | None, export_wh: int | None, separator: bytes
) -> bytes | None:
    try:
        values = SignedValues(
            bytes.fromhex(meter_id[2:]), start, INTERVAL_SECONDS, import_wh or 0, export_wh or 0
        )
        return eip712.digest(separator, struct_hash(values))
    except (ValueError, TypeError):
        return None


def reading_digest(values: SignedValues, chain_id: int, registry: str) -> bytes:
    """The EIP-712 digest (= `RECRegistry.readingDigest`); also the reading's evidence leaf."""
    return eip712.digest(domain_separator(chain_id, registry), struct_hash(values))


def typed_data(values: SignedValues, chain_id: int, registry: str) -> dict[str, Any]:
    """The document a device or a wallet signs with `eth_signTypedData_v4`."""
    return {
        "types": {"EIP712Domain": DOMAIN_FIELDS, "MeterReading": READING_FIELDS},
        "primaryType": "MeterReading",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(registry),
        },
        "message": values.message(),
    }


def sign_reading(
    values: SignedValues, private_key: str | bytes, chain_id: int, registry: str
) -> bytes:
    """65-byte r||s||v signature, as a meter's secure element or a wallet returns it."""
    message = SignableMessage(b"\x01", domain_separator(chain_id, registry), struct_hash(values))
    return bytes(Account.sign_message(message, private_key).signature)


def reading_signer(
    values: SignedValues, signature: bytes, chain_id: int, registry: str
) -> str | None:
    """The checksummed address that signed the reading, or None for a malformed signature or
    values that do not fit the type."""
    try:
        digest = reading_digest(values, chain_id, registry)
    except ValueError:
        return None
    return ecdsa_signer(digest, signature)

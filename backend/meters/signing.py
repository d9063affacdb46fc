"""Meter readings as EIP-712 typed data: what a meter (or a metering data provider) signs.

A reading that settles a trade or issues a certificate must be signed by the meter's approved
key, so anyone holding the reading, the signature and the registry's approval can check it
without trusting us; `RECRegistry.readingDigest`/`isValidReading` verify the same digest on
chain. The domain is `{name: "GridLedger Meters", version: "1", chainId, verifyingContract:
RECRegistry}`, so a signature cannot be replayed on another chain or registry, and the struct
names the meter and the interval, so it cannot be replayed to another meter or interval.
Absent values are signed as 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage
from eth_utils import keccak, to_checksum_address

from backend.chain import eip712
from backend.chain.eip712 import DOMAIN_FIELDS, type_string, word_encoder
from backend.chain.signatures import ecdsa_signer

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

"""EIP-712 building blocks shared by every typed document we hash (orders, meter readings).

The hot paths hash structs of static fields directly, as the contracts do:
`keccak256(0x1901 ‖ domainSeparator ‖ keccak256(abi.encode(TYPEHASH, fields…)))`, with each
field one 32-byte ABI word. The encoders raise ValueError for a value that does not fit its
Solidity type, so a bad value never hashes to something nobody signed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from eth_utils import keccak

DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
DOMAIN_TYPE = "EIP712Domain(" + ",".join(f"{f['type']} {f['name']}" for f in DOMAIN_FIELDS) + ")"
DOMAIN_TYPEHASH = keccak(text=DOMAIN_TYPE)

WordEncoder = Callable[[Any, str], bytes]  # (value, field name) -> one 32-byte ABI word


def uint_word(value: int, bits: int, name: str) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << bits:
        raise ValueError(f"{name} = {value!r} does not fit in uint{bits}")
    return value.to_bytes(32, "big")


def address_word(value: str, name: str = "address") -> bytes:
    raw = bytes.fromhex(value[2:]) if isinstance(value, str) and value[:2] in ("0x", "0X") else b""
    if len(raw) != 20:
        raise ValueError(f"{name} = {value!r} is not a 20-byte hex address")
    return bytes(12) + raw


def bytes32_word(value: bytes, name: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        raise ValueError(f"{name} must be 32 bytes, got {value!r}")
    return bytes(value)


def word_encoder(solidity_type: str) -> WordEncoder:
    if solidity_type == "address":
        return address_word
    if solidity_type == "bytes32":
        return bytes32_word
    bits = int(solidity_type.removeprefix("uint"))
    return lambda value, name: uint_word(value, bits, name)


def type_string(primary: str, fields: Sequence[dict[str, str]]) -> str:
    return primary + "(" + ",".join(f"{f['type']} {f['name']}" for f in fields) + ")"


@lru_cache(maxsize=32)
def domain_separator(name: str, version: str, chain_id: int, verifying_contract: str) -> bytes:
    """hashStruct(EIP712Domain{name, version, chainId, verifyingContract}), as OpenZeppelin's
    `EIP712._domainSeparatorV4()` computes it."""
    return keccak(
        DOMAIN_TYPEHASH
        + keccak(text=name)
        + keccak(text=version)
        + uint_word(chain_id, 256, "chainId")
        + address_word(verifying_contract, "verifyingContract")
    )


def digest(separator: bytes, struct_hash: bytes) -> bytes:
    """The EIP-712 digest a wallet signs: keccak256(0x1901 ‖ domainSeparator ‖ structHash)."""
    return keccak(b"\x19\x01" + separator + struct_hash)

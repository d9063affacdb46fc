"""Whose signature is this: an account's own ECDSA signature, or a contract wallet's (ERC-1271).

An externally owned account signs a 32-byte digest with its key (65 bytes r ‖ s ‖ v). A
contract wallet (a Safe, a smart account) has no key: it says whether a signature of any length
is its own through `isValidSignature(bytes32 digest, bytes signature)`, answering the magic value
0x1626ba7e (ERC-1271) — what the market's `SignatureChecker` asks on chain.

`signed_by` recovers locally and asks the chain only when the signature is not the address's
ECDSA signature. Its chain question is `is_valid_signature_call`, an optional `ViewCall`: a
caller that reads the chain anyway puts it in the same `Chain.read` batch and reads the answer
with `erc1271_accepts` (an address without code, or one that reverts, accepts nothing).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from coincurve import PublicKey
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from backend.chain.contracts import ViewCall, chain_for
from backend.core.config import Settings

MAGIC_VALUE = keccak(text="isValidSignature(bytes32,bytes)")[:4]  # 0x1626ba7e
ECDSA_SIGNATURE_BYTES = 65
MAX_SIGNATURE_BYTES = 4096  # 63 owners' signatures of a Safe; the API refuses longer ones
SIGNATURE_PATTERN = r"^0x(?:[0-9a-fA-F]{2})+$"  # request bodies: hex bytes, any length
SIGNATURE_MAX_LENGTH = 2 + 2 * MAX_SIGNATURE_BYTES
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def ecdsa_signer(digest: bytes, signature: bytes) -> str | None:
    """The checksummed address whose key signed `digest`, or None when `signature` is not a
    well-formed 65-byte ECDSA signature with low `s` (the rules of OpenZeppelin's `ECDSA`)."""
    if len(signature) != ECDSA_SIGNATURE_BYTES:
        return None
    s, v = int.from_bytes(signature[32:64], "big"), signature[64]
    if s > _SECP256K1_N // 2 or v not in (0, 1, 27, 28):
        return None
    try:  # libsecp256k1 through coincurve directly: eth_keys' wrapping costs ~2x per recovery
        public = PublicKey.from_signature_and_message(
            signature[:64] + bytes([v % 27]), digest, hasher=None
        )
    except Exception:  # r or s out of range, no point on the curve: coincurve raises ValueError
        return None
    return address_of(public.format(compressed=False))


@lru_cache(maxsize=4_096)
def address_of(public_key: bytes) -> str:
    """The checksummed address of an uncompressed public key. Cached: one key signs many
    messages (a meter its readings, a market maker its orders), and keccak plus the checksum
    cost about as much as the recovery itself."""
    return to_checksum_address(keccak(public_key[1:])[-20:])


@lru_cache(maxsize=4_096)
def checksum_address(address: str) -> str:
    """`to_checksum_address(address)`, cached: an account's address is checksummed for every
    order it places (a keccak each time); raises as `to_checksum_address` does."""
    return to_checksum_address(address)


def is_valid_signature_call(address: str, digest: bytes, signature: bytes) -> ViewCall:
    """`address.isValidSignature(digest, signature)` for `Chain.read`, answering None when the
    address has no code or reverts."""
    data = MAGIC_VALUE + abi_encode(["bytes32", "bytes"], [digest, signature])
    return ViewCall(to_checksum_address(address), "0x" + data.hex(), ("bytes4",), optional=True)


def erc1271_accepts(answer: Any) -> bool:
    """Whether an `is_valid_signature_call` answer is the ERC-1271 magic value."""
    return answer == MAGIC_VALUE


def signed_by(settings: Settings, address: str, *, digest: bytes, signature: bytes) -> bool:
    """Whether `signature` over `digest` is `address`'s: its ECDSA signature, else (one call to
    the chain of `settings`) a signature its ERC-1271 `isValidSignature` accepts."""
    signer = ecdsa_signer(digest, signature)
    if signer is not None and signer.lower() == address.lower():
        return True
    _, (answer,) = chain_for(settings).read(is_valid_signature_call(address, digest, signature))
    return erc1271_accepts(answer)

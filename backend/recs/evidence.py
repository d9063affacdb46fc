"""Evidence roots: the Merkle tree a certificate commits to in `CertificateIssued.evidenceRoot`.

Leaves are the EIP-712 digests of the signed readings behind the certificate
(`backend.meters.signing.reading_digest`, equal to `RECRegistry.readingDigest`). Pairs are
hashed sorted (smaller first), as OpenZeppelin's `MerkleProof.verify` expects, so a proof is
the list of sibling hashes with no left/right flags. Leaves are sorted and de-duplicated first,
so the root does not depend on the order the readings arrived in; a node without a sibling moves
up a level unchanged. A leaf is a digest a meter signed, so an inner node cannot pass for a
reading: nobody holds a meter signature over it.

A third party checks a certificate with: the event's root, a reading, its signature, its proof
(`evidence_proof`), then `verify_proof` here or `MerkleProof.verify` on chain, and
`RECRegistry.isValidReading` for the signature and the registrar's approval of the meter.
"""

from __future__ import annotations

from collections.abc import Iterable

from eth_utils import keccak


def hash_pair(a: bytes, b: bytes) -> bytes:
    """keccak256 of the two nodes, smaller first (OpenZeppelin `Hashes.commutativeKeccak256`)."""
    return keccak(a + b) if a < b else keccak(b + a)


def _levels(leaves: Iterable[bytes]) -> list[list[bytes]]:
    level = sorted(set(leaves))
    if not level:
        raise ValueError("an evidence tree needs at least one reading")
    if any(len(leaf) != 32 for leaf in level):
        raise ValueError("evidence leaves are 32-byte reading digests")
    levels = [level]
    while len(level) > 1:
        level = [
            hash_pair(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
            for i in range(0, len(level), 2)
        ]
        levels.append(level)
    return levels


def evidence_root(leaves: Iterable[bytes]) -> bytes:
    """The Merkle root of the reading digests `leaves` (ValueError if there are none)."""
    return _levels(leaves)[-1][0]


def evidence_proof(leaves: Iterable[bytes], leaf: bytes) -> list[bytes]:
    """The sibling hashes that lead from `leaf` to the root (ValueError if it is not a leaf)."""
    levels = _levels(leaves)
    try:
        index = levels[0].index(leaf)
    except ValueError:
        raise ValueError("the reading is not among the certificate's evidence") from None
    proof = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        index //= 2
    return proof


def evidence_proofs(leaves: Iterable[bytes]) -> dict[bytes, list[bytes]]:
    """Every leaf's proof, from one tree (`evidence_proof` per leaf would rebuild it each time)."""
    levels = _levels(leaves)
    proofs = {}
    for index, leaf in enumerate(levels[0]):
        proof, position = [], index
        for level in levels[:-1]:
            if position ^ 1 < len(level):
                proof.append(level[position ^ 1])
            position //= 2
        proofs[leaf] = proof
    return proofs


def verify_proof(proof: Iterable[bytes], root: bytes, leaf: bytes) -> bool:
    """Python mirror of OpenZeppelin `MerkleProof.verify(proof, root, leaf)`."""
    node = leaf
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node == root

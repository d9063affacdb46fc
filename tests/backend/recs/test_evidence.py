"""Evidence trees: roots independent of reading order, a proof for every reading, no proof for
anything else (the on-chain check is in tests/contracts/registry/test_meters.py)."""

import pytest
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from backend.recs.evidence import (
    evidence_proof,
    evidence_proofs,
    evidence_root,
    hash_pair,
    verify_proof,
)

LEAVES = st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40, unique=True)


@given(leaves=LEAVES, data=st.data())
def test_every_leaf_proves_and_the_root_ignores_order(leaves, data):
    root = evidence_root(leaves)
    assert evidence_root(data.draw(st.permutations(leaves))) == root
    for leaf in leaves:
        assert verify_proof(evidence_proof(leaves, leaf), root, leaf)


@given(leaves=LEAVES)
def test_all_proofs_from_one_tree_equal_the_proofs_one_by_one(leaves):
    proofs = evidence_proofs(leaves)
    assert set(proofs) == set(leaves)
    assert all(proofs[leaf] == evidence_proof(leaves, leaf) for leaf in leaves)


@given(leaves=LEAVES, stranger=st.binary(min_size=32, max_size=32))
def test_a_reading_outside_the_tree_does_not_prove(leaves, stranger):
    root = evidence_root(leaves)
    if stranger not in leaves:
        assert not verify_proof(evidence_proof(leaves, leaves[0]), root, stranger)
        with pytest.raises(ValueError, match="not among"):
            evidence_proof(leaves, stranger)


def test_one_reading_is_its_own_root_and_two_hash_sorted():
    a, b = keccak(b"a"), keccak(b"b")
    assert evidence_root([a]) == a
    assert evidence_root([b, a]) == hash_pair(a, b) == keccak(min(a, b) + max(a, b))


def test_no_reading_or_a_malformed_leaf_is_refused():
    with pytest.raises(ValueError, match="at least one"):
        evidence_root([])
    with pytest.raises(ValueError, match="32-byte"):
        evidence_root([b"short"])

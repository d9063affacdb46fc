"""Whose signature: a key's ECDSA signature (OpenZeppelin's rules), or a contract wallet's
ERC-1271 answer read on a real Anvil (no code, or no such function, accepts nothing)."""

from __future__ import annotations

import pytest
from eth_account import Account as EthAccount
from eth_account.messages import defunct_hash_message, encode_defunct
from eth_utils import keccak, to_checksum_address

from backend.chain.contracts import chain_for
from backend.chain.signatures import (
    MAGIC_VALUE,
    checksum_address,
    ecdsa_signer,
    erc1271_accepts,
    is_valid_signature_call,
    signed_by,
)
from tests.fixtures.contract_wallets import deploy_contract_wallet

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _sign(key, text: str) -> tuple[bytes, bytes]:
    signed = EthAccount.sign_message(encode_defunct(text=text), key)
    return defunct_hash_message(text=text), bytes(signed.signature)


def test_checksum_address_is_eth_utils_own_and_refuses_the_same():
    address = EthAccount.create().address
    for spelling in (address.lower(), address, "0x" + address[2:].upper()):
        assert checksum_address(spelling) == to_checksum_address(spelling) == address
    for bad in ("0x" + "11" * 19, "nonsense"):
        with pytest.raises(ValueError):
            to_checksum_address(bad)
        with pytest.raises(ValueError):
            checksum_address(bad)


def test_ecdsa_signer_follows_openzeppelins_rules():
    assert bytes.fromhex("1626ba7e") == MAGIC_VALUE
    key = EthAccount.create()
    digest, signature = _sign(key.key, "hello")
    assert ecdsa_signer(digest, signature) == key.address
    assert ecdsa_signer(digest, signature[:64] + bytes([signature[64] - 27])) == key.address
    # the same signature with high s (malleable: s' = n - s, v flipped) is refused
    s = int.from_bytes(signature[32:64], "big")
    high = signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - signature[64]])
    assert ecdsa_signer(digest, high) is None
    for bad in (
        b"",
        signature[:64],
        signature + b"\0",
        b"\0" * 64 + b"\x1b",
        signature[:64] + b"\5",
    ):
        assert ecdsa_signer(digest, bad) is None


def test_signed_by_asks_the_contract_wallet_and_nothing_else_accepts(devnet):
    owner, stranger = devnet.workload.people[2], devnet.workload.people[3]
    wallet = deploy_contract_wallet(devnet, owner)
    chain = chain_for(devnet.settings)
    digest, by_owner = _sign(owner.key, "sign in")
    _, by_stranger = _sign(stranger.key, "sign in")

    assert signed_by(devnet.settings, wallet, digest=digest, signature=by_owner)
    assert not signed_by(devnet.settings, wallet, digest=digest, signature=by_stranger)
    assert not signed_by(devnet.settings, wallet, digest=keccak(b"other"), signature=by_owner)
    assert signed_by(devnet.settings, owner.address, digest=digest, signature=by_owner)
    assert not signed_by(devnet.settings, stranger.address, digest=digest, signature=by_owner)
    # the batch answers None for an address without code and for a contract without the
    # function (GridUSD reverts), next to the wallet's own answer
    _, answers = chain.read(
        is_valid_signature_call(stranger.address, digest, by_owner),
        is_valid_signature_call(chain.token.address, digest, by_owner),
        is_valid_signature_call(wallet, digest, by_owner),
        is_valid_signature_call(wallet, digest, b"\1" * 200),
    )
    assert answers == [None, None, MAGIC_VALUE, bytes.fromhex("ffffffff")]
    assert [erc1271_accepts(a) for a in answers] == [False, False, True, False]


@pytest.mark.parametrize("length", [0, 1, 64, 66, 4096])
def test_signatures_of_any_length_reach_the_wallet(devnet, length):
    wallet = deploy_contract_wallet(devnet, devnet.workload.people[2])
    call = is_valid_signature_call(wallet, keccak(b"x"), b"\7" * length)
    _, (answer,) = chain_for(devnet.settings).read(call)
    assert answer == bytes.fromhex("ffffffff")  # decoded and refused by the wallet itself

"""The order-intake fast path of backend/market/orders.py (precomputed domain separator and type
hash, one word per field) is the generic EIP-712 path: same digest as eth_account's
`encode_typed_data`, same signer recovered (or the same refusal), same signature.
tests/contracts/market/test_orders.py checks the digest against the contract's `orderHash`."""

from __future__ import annotations

import pytest
from eth_abi.exceptions import EncodingError
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.market.orders import (
    ORDER_FIELDS,
    Order,
    domain_separator,
    order_digest,
    recover_maker,
    sign_order,
    struct_hash,
    typed_data,
)

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def uint(bits: int):
    return st.integers(min_value=0, max_value=2**bits - 1)


addresses = st.binary(min_size=20, max_size=20).map(lambda raw: to_checksum_address(raw))
orders = st.builds(
    Order,
    maker=addresses,
    side=uint(8),
    product=uint(8),
    assetId=uint(256),
    meterId=st.binary(min_size=32, max_size=32),
    quantityWh=uint(128),
    price=uint(128),
    deliveryStart=uint(64),
    deliveryEnd=uint(64),
    expiry=uint(64),
    nonce=uint(64),
    salt=uint(256),
)
chain_ids = st.integers(min_value=1, max_value=2**64)
private_keys = st.integers(min_value=1, max_value=SECP256K1_N - 1).map(
    lambda k: k.to_bytes(32, "big")
)


def generic_digest(order: Order, chain_id: int, market: str) -> bytes:
    signable = encode_typed_data(full_message=typed_data(order, chain_id, market))
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


@settings(max_examples=300, deadline=None)
@given(order=orders, chain_id=chain_ids, market=addresses)
def test_digest_equals_eth_account_encode_typed_data(order, chain_id, market):
    signable = encode_typed_data(full_message=typed_data(order, chain_id, market))
    assert domain_separator(chain_id, market) == signable.header
    assert struct_hash(order) == signable.body
    assert order_digest(order, chain_id, market) == generic_digest(order, chain_id, market)


@settings(max_examples=60, deadline=None)
@given(order=orders, chain_id=chain_ids, market=addresses, key=private_keys)
def test_sign_and_recover_equal_eth_account(order, chain_id, market, key):
    signer = Account.from_key(key)
    order = order.replace(maker=signer.address)
    document = typed_data(order, chain_id, market)
    expected = bytes(Account.sign_typed_data(key, full_message=document).signature)
    assert sign_order(order, key, chain_id, market) == expected
    assert recover_maker(order, expected, chain_id, market) == signer.address
    # signed over other terms: a valid signature of somebody else
    other = order.replace(salt=(order.salt + 1) % 2**256)
    assert recover_maker(other, expected, chain_id, market) != signer.address


def _recover_generic(order, signature, chain_id, market):
    try:
        return Account.recover_message(
            encode_typed_data(full_message=typed_data(order, chain_id, market)), signature=signature
        )
    except Exception as exc:
        return type(exc)


def _recover_fast(order, signature, chain_id, market):
    try:
        return recover_maker(order, signature, chain_id, market)
    except Exception as exc:
        return type(exc)


@settings(max_examples=200, deadline=None)
@given(
    order=orders,
    market=addresses,
    r=st.one_of(st.just(0), uint(256)),
    s=st.one_of(st.just(0), st.just(SECP256K1_N), uint(256)),
    v=st.one_of(st.sampled_from([0, 1, 27, 28, 29, 35, 36, 37]), uint(8)),
)
def test_malformed_signatures_get_the_same_answer(order, market, r, s, v):
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])
    assert _recover_fast(order, signature, 31337, market) == _recover_generic(
        order, signature, 31337, market
    )


@pytest.mark.parametrize("field", [f["name"] for f in ORDER_FIELDS if f["type"].startswith("uint")])
def test_a_field_that_does_not_fit_its_type_is_refused_like_eth_account(field):
    bits = int(next(f["type"] for f in ORDER_FIELDS if f["name"] == field)[4:])
    order = Order(
        maker="0x" + "11" * 20,
        side=0,
        product=0,
        assetId=0,
        meterId=b"\1" * 32,
        quantityWh=1,
        price=1,
        deliveryStart=0,
        deliveryEnd=0,
        expiry=0,
        nonce=0,
        salt=0,
    )
    for bad in (2**bits, -1):
        too_big = order.replace(**{field: bad})
        with pytest.raises(ValueError, match=field):
            order_digest(too_big, 1, "0x" + "22" * 20)
        with pytest.raises(EncodingError):  # eth_abi refuses the out-of-range value
            generic_digest(too_big, 1, "0x" + "22" * 20)


def test_meter_id_must_be_32_bytes():
    order = Order(
        maker="0x" + "11" * 20,
        side=0,
        product=0,
        assetId=0,
        meterId=b"\1" * 31,
        quantityWh=1,
        price=1,
        deliveryStart=0,
        deliveryEnd=0,
        expiry=0,
        nonce=0,
        salt=0,
    )
    with pytest.raises(ValueError, match="meterId"):
        order_digest(order, 1, "0x" + "22" * 20)

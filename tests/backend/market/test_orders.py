"""The order-intake fast path of backend/market/orders.py (precomputed domain separator and type
hash, one word per field) is the generic EIP-712 path: same digest as eth_account's
`encode_typed_data`, same signer recovered (or the same refusal), same signature.
tests/contracts/market/test_orders.py checks the digest against the contract's `orderHash`."""

from __future__ import annotations

import json

import pytest
from eth_abi.exceptions import EncodingError
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.chain.eip712 import word_encoder
from backend.market.orders import (
    ORDER_FIELDS,
    ORDER_TYPEHASH,
    Order,
    default_meter_id,
    domain_separator,
    meter_id,
    meter_owner,
    order_digest,
    recover_maker,
    sign_order,
    struct_hash,
    typed_data,
)
from backend.market.orders import _packed as packed
from tests.fixtures.javascript import JS_SAFE, js_parse, json_numbers, run_node

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


SMALLEST_ORDER = Order(
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


@pytest.mark.parametrize("field", [f["name"] for f in ORDER_FIELDS if f["type"].startswith("uint")])
def test_a_field_that_does_not_fit_its_type_is_refused_like_eth_account(field):
    bits = int(next(f["type"] for f in ORDER_FIELDS if f["name"] == field)[4:])
    order = SMALLEST_ORDER
    for bad in (2**bits, -1):
        too_big = order.replace(**{field: bad})
        with pytest.raises(ValueError, match=field):
            order_digest(too_big, 1, "0x" + "22" * 20)
        with pytest.raises(EncodingError):  # eth_abi refuses the out-of-range value
            generic_digest(too_big, 1, "0x" + "22" * 20)


@settings(max_examples=200, deadline=None)
@given(order=orders)
def test_the_packed_words_are_the_abi_encoding_of_every_field(order):
    generic = b"".join(
        word_encoder(f["type"])(getattr(order, f["name"]), f["name"]) for f in ORDER_FIELDS
    )
    assert packed(order) == ORDER_TYPEHASH + generic


@pytest.mark.parametrize(
    ("field", "odd"),
    [
        ("side", True),  # a bool is no uint, as eth_abi says
        ("price", 1.0),
        ("salt", "1"),
        ("maker", "0x" + "11" * 19 + "  "),  # fromhex skips the spaces: 19 bytes
        ("maker", "11" * 21),
        ("meterId", bytearray(32)),  # bytes-like: not packed, but hashed like bytes
    ],
)
def test_an_odd_value_takes_the_generic_encoders_and_their_answer(field, odd):
    order = SMALLEST_ORDER.replace(**{field: odd})
    assert packed(order) is None
    if field == "meterId":
        assert struct_hash(order) == struct_hash(SMALLEST_ORDER.replace(meterId=bytes(32)))
        return
    with pytest.raises(ValueError, match=field):
        struct_hash(order)


def test_a_maker_that_is_not_hex_is_refused():
    order = SMALLEST_ORDER.replace(maker="0x" + "zz" * 20)
    assert packed(order) is None
    with pytest.raises(ValueError):
        struct_hash(order)


def test_meter_id_must_be_32_bytes():
    order = SMALLEST_ORDER.replace(meterId=b"\1" * 31)
    with pytest.raises(ValueError, match="meterId"):
        order_digest(order, 1, "0x" + "22" * 20)


# ------------------------------------------------------- the document as JavaScript reads it


@settings(max_examples=200, deadline=None)
@given(order=orders, chain_id=chain_ids, market=addresses, key=private_keys)
def test_document_survives_a_javascript_round_trip_and_its_signature_verifies(
    order, chain_id, market, key
):
    """Every number in the served document is exact in JavaScript (uint64 and wider are
    strings); a signature over what `JSON.parse` makes of it recovers to the maker."""
    signer = Account.from_key(key)
    order = order.replace(maker=signer.address)
    document = typed_data(order, chain_id, market)
    assert all(abs(n) <= JS_SAFE for n in json_numbers(document))
    parsed = js_parse(json.dumps(document))
    assert parsed == document
    signature = bytes(Account.sign_typed_data(key, full_message=parsed).signature)
    assert recover_maker(order, signature, chain_id, market) == signer.address


@settings(max_examples=3, deadline=None)
@given(
    batch=st.lists(st.tuples(orders, private_keys), min_size=10, max_size=10),
    chain_id=st.integers(min_value=1, max_value=JS_SAFE),
    market=addresses,
)
def test_javascript_wallet_libraries_sign_the_document_as_served(batch, chain_id, market):
    """Node `JSON.parse`s each document and signs it with @metamask/eth-sig-util (V4) and
    viem; both signatures recover to the maker in Python."""
    signed = [
        (order.replace(maker=Account.from_key(key).address), Account.from_key(key).address, key)
        for order, key in batch
    ]
    lines = [
        json.dumps({"key": "0x" + key.hex(), "document": typed_data(order, chain_id, market)})
        for order, _, key in signed
    ]
    replies = [
        json.loads(line)
        for line in run_node("sign_documents.mjs", stdin="\n".join(lines)).splitlines()
    ]
    assert len(replies) == len(signed)
    for (order, address, _), reply in zip(signed, replies, strict=True):
        for library in ("eth-sig-util", "viem"):
            signature = bytes.fromhex(reply[library].removeprefix("0x"))
            assert recover_maker(order, signature, chain_id, market) == address, library


@given(owner=st.binary(min_size=20, max_size=20), name=st.text(min_size=1, max_size=40))
def test_meter_id_is_the_owner_address_then_the_name_hash(owner, name):
    address = to_checksum_address(owner)
    meter = meter_id(address, name)
    assert meter[:20] == owner
    assert meter[20:] == keccak(text=name)[:12]
    assert meter_owner(meter) == address
    assert meter_id(address.lower(), name) == meter  # any spelling of the owner, one id


def test_two_owners_never_share_a_meter_id_for_one_name():
    first, second = Account.create().address, Account.create().address
    assert meter_id(first, "meter:solar-1") != meter_id(second, "meter:solar-1")
    assert meter_owner(default_meter_id(second)) == second


def test_meter_owner_refuses_an_id_that_is_not_32_bytes():
    with pytest.raises(ValueError, match="32 bytes"):
        meter_owner(b"\x01" * 20)

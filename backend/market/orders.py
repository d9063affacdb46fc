"""EnergyMarket orders as EIP-712 typed data: the one place that builds the document.

`typed_data()` returns exactly the JSON document a browser wallet signs with
`eth_signTypedData_v4` (domain + types + primaryType + message). The hot path (order intake)
does not walk that document: `order_digest()`, `sign_order()` and `recover_maker()` hash the
order as the contract does,
`keccak256(0x1901 ‖ domainSeparator ‖ keccak256(abi.encode(ORDER_TYPEHASH, order)))`,
with the domain separator computed once per market. tests/backend/test_order_digest.py
checks both ways agree for random orders, tests/contracts/market/test_orders.py that the digest is
the contract's `orderHash`. Tests and the backend share this module so the contract's
`ORDER_TYPE` and the off-chain side cannot drift.
"""

from __future__ import annotations

from dataclasses import asdict, astuple, dataclass, replace
from functools import lru_cache
from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage
from eth_utils import keccak, to_checksum_address
from sha3 import keccak_256

from backend.chain import eip712
from backend.chain.eip712 import DOMAIN_FIELDS, type_string, word_encoder

DOMAIN_NAME = "GridLedger EnergyMarket"
DOMAIN_VERSION = "1"

SELL, BUY = 0, 1
ENERGY, REC = 0, 1
SLOT_SECONDS = 900
WH_PER_KWH = 1000
BPS = 10_000
JS_SAFE_BITS = 53  # a JavaScript number holds integers of at most 53 bits exactly

ORDER_FIELDS = [
    {"name": "maker", "type": "address"},
    {"name": "side", "type": "uint8"},
    {"name": "product", "type": "uint8"},
    {"name": "assetId", "type": "uint256"},
    {"name": "meterId", "type": "bytes32"},
    {"name": "quantityWh", "type": "uint128"},
    {"name": "price", "type": "uint128"},
    {"name": "deliveryStart", "type": "uint64"},
    {"name": "deliveryEnd", "type": "uint64"},
    {"name": "expiry", "type": "uint64"},
    {"name": "nonce", "type": "uint64"},
    {"name": "salt", "type": "uint256"},
]
ORDER_TYPE = type_string("Order", ORDER_FIELDS)
ORDER_TYPEHASH = keccak(text=ORDER_TYPE)


def meter_id(owner: str, name: str) -> bytes:
    """The owner-bound bytes32 id of `owner`'s meter `name`: the owner's 20-byte address, then
    the first 12 bytes of keccak256(utf8(name)). Nobody can take another owner's id, and the id
    itself says who owns the meter (EnergyMarket and RECRegistry check exactly that)."""
    return bytes.fromhex(to_checksum_address(owner)[2:]) + keccak(text=name)[:12]


def meter_owner(meter: bytes) -> str:
    """The checksum address that owns `meter` (its top 20 bytes)."""
    if len(meter) != 32:
        raise ValueError(f"a meter id is 32 bytes, got {len(meter)}")
    return _checksum_of(bytes(meter[:20]))


@lru_cache(maxsize=4_096)
def _checksum_of(address: bytes) -> str:
    """to_checksum_address of 20 bytes, cached: the intake asks it of every order's meter."""
    return to_checksum_address(address)


def default_meter_id(owner: str) -> bytes:
    """The id of the meter an account trades from when it names none (`meter:<address>`)."""
    address = to_checksum_address(owner)
    return meter_id(address, f"meter:{address}")


@dataclass(frozen=True)
class Order:
    """Field-for-field mirror of `IEnergyMarket.Order` (same order as the EIP-712 type)."""

    maker: str
    side: int
    product: int
    assetId: int
    meterId: bytes
    quantityWh: int
    price: int
    deliveryStart: int
    deliveryEnd: int
    expiry: int
    nonce: int
    salt: int

    def as_tuple(self) -> tuple[Any, ...]:
        """The ABI tuple to pass to the contract."""
        return astuple(self)

    def message(self) -> dict[str, Any]:
        """The EIP-712 `message` object, JSON-safe for JavaScript: bytes32 as 0x-hex and every
        uint wider than 53 bits (uint64 and up) as a decimal string, whatever its value, so
        `JSON.parse` never rounds it (`eth_signTypedData_v4` takes decimal strings for uints)."""
        values = asdict(self)
        message: dict[str, Any] = {}
        for field in ORDER_FIELDS:
            name, solidity_type = field["name"], field["type"]
            value = values[name]
            if solidity_type == "address":
                message[name] = to_checksum_address(value)
            elif solidity_type == "bytes32":
                message[name] = "0x" + bytes(value).hex()
            elif int(solidity_type.removeprefix("uint")) > JS_SAFE_BITS:
                message[name] = str(value)
            else:
                message[name] = value
        return message

    def replace(self, **changes: Any) -> Order:
        return replace(self, **changes)


def domain(chain_id: int, verifying_contract: str) -> dict[str, Any]:
    """The EIP-712 domain. `chainId` is a JSON number as wallets compare it with
    `eth_chainId` (every real chain id is below 2^53, EIP-2294); a larger one is a string."""
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id if chain_id < 2**JS_SAFE_BITS else str(chain_id),
        "verifyingContract": to_checksum_address(verifying_contract),
    }


def typed_data(order: Order, chain_id: int, verifying_contract: str) -> dict[str, Any]:
    """The full `eth_signTypedData_v4` document for `order`."""
    return {
        "types": {"EIP712Domain": DOMAIN_FIELDS, "Order": ORDER_FIELDS},
        "primaryType": "Order",
        "domain": domain(chain_id, verifying_contract),
        "message": order.message(),
    }


def sign_order(
    order: Order, private_key: str | bytes, chain_id: int, verifying_contract: str
) -> bytes:
    """65-byte r||s||v signature of `order`, as a wallet returns it."""
    signed = Account.sign_message(signable(order, chain_id, verifying_contract), private_key)
    return bytes(signed.signature)


def domain_separator(chain_id: int, verifying_contract: str) -> bytes:
    """`_domainSeparatorV4()` of the market at `verifying_contract` (hashStruct(domain))."""
    return eip712.domain_separator(DOMAIN_NAME, DOMAIN_VERSION, chain_id, verifying_contract)


# every field of Order is a static type: abi.encode gives one 32-byte word per field, in order
_ORDER_WORDS = tuple((f["name"], word_encoder(f["type"])) for f in ORDER_FIELDS)


# the uint fields after maker, in order (meterId sits between assetId and quantityWh)
_UINT_LIMITS = tuple(
    1 << int(f["type"].removeprefix("uint")) for f in ORDER_FIELDS if f["type"].startswith("uint")
)
_PAD = bytes(12)


def struct_hash(order: Order) -> bytes:
    """hashStruct(order) = keccak256(abi.encode(ORDER_TYPEHASH, order)); raises ValueError for a
    field that does not fit its Solidity type."""
    words = _packed(order)
    if words is None:  # some field does not fit: the generic encoders say which
        words = ORDER_TYPEHASH + b"".join(
            encode(getattr(order, name), name) for name, encode in _ORDER_WORDS
        )
    return keccak_256(words).digest()


def _packed(order: Order) -> bytes | None:
    """ORDER_TYPEHASH and the order's ABI words when every field fits its type (the intake's
    case: one pass, no encoder call per field; pysha3's C keccak hashes them), else None."""
    maker, meter = order.maker, order.meterId
    uints = (
        order.side,
        order.product,
        order.assetId,
        order.quantityWh,
        order.price,
        order.deliveryStart,
        order.deliveryEnd,
        order.expiry,
        order.nonce,
        order.salt,
    )
    if type(meter) is not bytes or len(meter) != 32:
        return None
    if type(maker) is not str or len(maker) != 42 or maker[:2] not in ("0x", "0X"):
        return None
    for value, limit in zip(uints, _UINT_LIMITS, strict=True):
        if type(value) is not int or not 0 <= value < limit:
            return None
    try:
        address = bytes.fromhex(maker[2:])
    except ValueError:
        return None
    if len(address) != 20:
        return None
    side, product, asset, quantity, price, start, end, expiry, nonce, salt = uints
    return b"".join(
        (
            ORDER_TYPEHASH,
            _PAD,
            address,
            side.to_bytes(32, "big"),
            product.to_bytes(32, "big"),
            asset.to_bytes(32, "big"),
            meter,
            quantity.to_bytes(32, "big"),
            price.to_bytes(32, "big"),
            start.to_bytes(32, "big"),
            end.to_bytes(32, "big"),
            expiry.to_bytes(32, "big"),
            nonce.to_bytes(32, "big"),
            salt.to_bytes(32, "big"),
        )
    )


def signable(order: Order, chain_id: int, verifying_contract: str) -> SignableMessage:
    """What `encode_typed_data(full_message=typed_data(...))` returns, built from the
    precomputed domain separator and type hash instead of the generic JSON walk."""
    return SignableMessage(
        b"\x01", domain_separator(chain_id, verifying_contract), struct_hash(order)
    )


def order_digest(order: Order, chain_id: int, verifying_contract: str) -> bytes:
    """The EIP-712 digest (= the market's `orderHash`)."""
    separator = eip712.domain_separator(DOMAIN_NAME, DOMAIN_VERSION, chain_id, verifying_contract)
    return keccak_256(b"\x19\x01" + separator + struct_hash(order)).digest()


def recover_maker(order: Order, signature: bytes, chain_id: int, verifying_contract: str) -> str:
    """The checksummed address that signed `order` (`Account.recover_message` on the signable
    message: the same v/r/s rules; raises as eth_keys does on a malformed signature)."""
    return Account.recover_message(
        signable(order, chain_id, verifying_contract), signature=signature
    )


def payment(quantity_wh: int, price: int) -> int:
    """Token base units for `quantity_wh` at `price` per kWh, rounded up like the contract
    (ceil: no Wh is bought for free)."""
    return -(-quantity_wh * price // WH_PER_KWH)


def penalty(penalised_wh: int, price: int, penalty_bps: int) -> int:
    """EnergyMarket's penalty on `penalised_wh`: floor(floor(Wh * price / 1000) * bps / 10000)."""
    return penalised_wh * price // WH_PER_KWH * penalty_bps // BPS


def collateral(quantity_wh: int, price: int, tolerance_bps: int, penalty_bps: int) -> int:
    """What an ENERGY sale locks of the seller's market balance at fill
    (EnergyMarket.collateralFor): the penalty on zero delivery, so any penalty is covered."""
    return penalty(quantity_wh - quantity_wh * tolerance_bps // BPS, price, penalty_bps)

"""EnergyMarket orders as EIP-712 typed data: the one place that builds the document.

`typed_data()` returns exactly the JSON document a browser wallet signs with
`eth_signTypedData_v4` (domain + types + primaryType + message); `sign_order()` signs it with
`eth_account.Account.sign_typed_data(private_key, full_message=...)`. Tests (and later the
backend) share this module so the contract's `ORDER_TYPE` and the off-chain side cannot drift.
"""
from __future__ import annotations

from dataclasses import astuple, dataclass, replace
from typing import Any

from eth_account import Account
from eth_utils import keccak, to_checksum_address

DOMAIN_NAME = "GridLedger EnergyMarket"
DOMAIN_VERSION = "1"

SELL, BUY = 0, 1
ENERGY, REC = 0, 1
SLOT_SECONDS = 900
WH_PER_KWH = 1000
BPS = 10_000

EIP712_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
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
ORDER_TYPE = "Order(" + ",".join(f"{f['type']} {f['name']}" for f in ORDER_FIELDS) + ")"
ORDER_TYPEHASH = keccak(text=ORDER_TYPE)


def meter_id(name: str) -> bytes:
    """A bytes32 meter id derived from a human-readable meter name."""
    return keccak(text=name)


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

    def as_tuple(self) -> tuple:
        """The ABI tuple to pass to the contract."""
        return astuple(self)

    def message(self) -> dict[str, Any]:
        """The EIP-712 `message` object (JSON-safe: bytes32 as 0x-hex)."""
        return {
            "maker": to_checksum_address(self.maker),
            "side": self.side,
            "product": self.product,
            "assetId": self.assetId,
            "meterId": "0x" + bytes(self.meterId).hex(),
            "quantityWh": self.quantityWh,
            "price": self.price,
            "deliveryStart": self.deliveryStart,
            "deliveryEnd": self.deliveryEnd,
            "expiry": self.expiry,
            "nonce": self.nonce,
            "salt": self.salt,
        }

    def replace(self, **changes: Any) -> "Order":
        return replace(self, **changes)


def domain(chain_id: int, verifying_contract: str) -> dict[str, Any]:
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": to_checksum_address(verifying_contract),
    }


def typed_data(order: Order, chain_id: int, verifying_contract: str) -> dict[str, Any]:
    """The full `eth_signTypedData_v4` document for `order`."""
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN_FIELDS, "Order": ORDER_FIELDS},
        "primaryType": "Order",
        "domain": domain(chain_id, verifying_contract),
        "message": order.message(),
    }


def sign_order(order: Order, private_key: str | bytes, chain_id: int, verifying_contract: str) -> bytes:
    """65-byte r||s||v signature of `order`, as a wallet returns it."""
    signed = Account.sign_typed_data(
        private_key, full_message=typed_data(order, chain_id, verifying_contract)
    )
    return bytes(signed.signature)


def order_digest(order: Order, chain_id: int, verifying_contract: str) -> bytes:
    """The EIP-712 digest (= the market's `orderHash`)."""
    from eth_account.messages import encode_typed_data

    signable = encode_typed_data(full_message=typed_data(order, chain_id, verifying_contract))
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def payment(quantity_wh: int, price: int) -> int:
    """Token base units for `quantity_wh` at `price` per kWh, floored like the contract."""
    return quantity_wh * price // WH_PER_KWH


"""Integers on the wire as JavaScript can hold them.

`JSON.parse` turns every number into an IEEE double, exact only up to 2^53 − 1
(`Number.MAX_SAFE_INTEGER`); a bigger one silently becomes a neighbour. The rule, decided per
field by what bounds it:

- `AmountStr` (and `Uint256Str`): a value whose on-chain type is a uint64/uint128/uint256 that
  nothing keeps small — token base units (prices, payments, balances, escrow, payouts), Wh
  quantities of orders, trades, certificates and claims (and their sums), salts, and the
  uint64 values a device's registrant sets on chain (capacity, commissioning time). A decimal
  string in every response; a request may send a string or a number.
- `SafeInt`: unix seconds, counters minted one at a time (nonces, trade, device, certificate
  and claim ids, sequence and block numbers), counts, chain ids, meter readings and
  capacities bounded by validation. A JSON number, exact because the API refuses anything
  above 2^53 − 1 on the way in (a request may send it as a string too, as wallets copy it
  from a typed-data document) and nothing it stores or reads grows past that.
- The EIP-712 document a wallet signs follows its own types: every uint wider than 53 bits is
  a decimal string there (`backend.market.orders.typed_data`), whatever the value.

Python code sees plain `int`s: the string form exists only in JSON (`when_used="json"`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

MAX_SAFE_INTEGER = 2**53 - 1  # JavaScript's Number.MAX_SAFE_INTEGER
U63 = 2**63 - 1  # PostgreSQL BIGINT: the ceiling of what the database stores
U256 = 2**256 - 1


def parse_uint(value: Any) -> Any:
    """A decimal string (at most 78 digits: uint256) becomes an int; anything else is left to
    the int validator (which refuses floats with a fraction, bools are refused here)."""
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit() or len(value) > 78:
            raise ValueError("expected a non-negative decimal integer string")
        return int(value)
    return value


_DECIMAL = {"type": "string", "pattern": r"^-?[0-9]{1,78}$"}  # differences may be negative


def _either(description: str, maximum: int) -> dict[str, Any]:
    """The request form: a number or a decimal string. The number's `maximum` is stated only
    where a double holds it exactly (OpenAPI tools read it as one); the field's `le` bounds it."""
    number: dict[str, Any] = {"type": "integer", "minimum": 0}
    if maximum <= MAX_SAFE_INTEGER:
        number["maximum"] = maximum
    return {
        "anyOf": [number, {"type": "string", "pattern": rf"^[0-9]{{1,{len(str(maximum))}}}$"}],
        "description": description,
    }


_AMOUNT_DOC = "A non-negative integer as a decimal string (a number is accepted in requests)."
_SAFE_DOC = "A non-negative integer at most 2^53 − 1 (a decimal string is accepted in requests)."

AmountStr = Annotated[
    int,
    BeforeValidator(parse_uint),
    PlainSerializer(str, return_type=str, when_used="json"),
    WithJsonSchema({**_DECIMAL, "description": _AMOUNT_DOC}, mode="serialization"),
    WithJsonSchema(_either(_AMOUNT_DOC, U256), mode="validation"),
]
"""A token amount or Wh quantity: a decimal string on the wire. Bound it in requests with
`Field(ge=..., le=U63)` (the database stores BIGINT)."""

Uint256Str = AmountStr
"""A uint256 value (a salt): a decimal string on the wire. Bound it with `Field(le=U256)`."""

Uint64Str = AmountStr
"""A uint64 that is not an amount but that anybody may set on chain without bounds (a device's
commissioning time, registered by its owner): a decimal string on the wire, like amounts."""

SafeInt = Annotated[
    int,
    BeforeValidator(parse_uint),
    WithJsonSchema({"type": "integer", "maximum": MAX_SAFE_INTEGER}, mode="serialization"),
    WithJsonSchema(_either(_SAFE_DOC, MAX_SAFE_INTEGER), mode="validation"),
]
"""Unix seconds or a counter: a JSON number. Bound it with `Field(le=MAX_SAFE_INTEGER)` in
requests."""

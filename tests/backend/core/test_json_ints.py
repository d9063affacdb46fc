"""backend/core/json_ints.py: amounts are decimal strings in JSON and ints in Python; requests
may send either form; the OpenAPI document says so."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field, ValidationError

from backend.core.json_ints import MAX_SAFE_INTEGER, U63, U256, AmountStr, SafeInt, Uint256Str
from backend.main import create_app


class Body(BaseModel):
    amount: AmountStr = Field(ge=1, le=U63)
    salt: Uint256Str = Field(ge=0, le=U256)
    at: SafeInt = Field(ge=0, le=MAX_SAFE_INTEGER)


@pytest.mark.parametrize("form", [str, int])
def test_requests_take_a_string_or_a_number_and_json_carries_amounts_as_strings(form):
    body = Body.model_validate({"amount": form(U63), "salt": form(U256), "at": form(1_800)})
    assert (body.amount, body.salt, body.at) == (U63, U256, 1_800)
    assert body.model_dump() == {"amount": U63, "salt": U256, "at": 1_800}
    assert body.model_dump_json() == f'{{"amount":"{U63}","salt":"{U256}","at":1800}}'


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", "0"),
        ("amount", str(U63 + 1)),
        ("salt", str(U256 + 1)),
        ("at", MAX_SAFE_INTEGER + 1),
        ("amount", "-1"),
        ("amount", " 12"),
        ("amount", "1e5"),
        ("amount", "0x10"),
        ("amount", "١٢"),  # Arabic-Indic digits: str.isdigit() says yes, JSON clients do not
        ("amount", True),
        ("amount", 1.5),
        ("salt", "9" * 79),
    ],
)
def test_out_of_range_and_malformed_values_are_refused(field, value):
    valid = {"amount": 1, "salt": 0, "at": 0}
    with pytest.raises(ValidationError):
        Body.model_validate({**valid, field: value})


def test_openapi_says_amounts_are_strings_and_requests_may_send_numbers():
    schemas = create_app().openapi()["components"]["schemas"]
    served = schemas["OrderPublic"]["properties"]
    assert served["price"]["type"] == "string" and served["salt"]["type"] == "string"
    assert served["expiry"]["type"] == "integer" and served["expiry"]["maximum"] == MAX_SAFE_INTEGER
    accepted = schemas["OrderCreate"]["properties"]["quantity_wh"]["anyOf"]
    assert {alternative["type"] for alternative in accepted} == {"integer", "string"}
    for name in ("TradePublic", "PriceLevel", "EnergyBalance", "CertificatePublic"):
        for field, schema in schemas[name]["properties"].items():
            if field.endswith("_wh") or field in ("price", "payment", "token_balance"):
                options = schema.get("anyOf", [schema])
                assert {o["type"] for o in options} <= {"string", "null"}, (name, field)

"""OpenAPI links: which value of a response feeds which later operation (create an order →
get or cancel it). Clients read them as documentation; schemathesis follows them to test the
API statefully (tests/backend/api/test_schemathesis_stateful.py)."""

from __future__ import annotations

from typing import Any


def link(operation_id: str, description: str, **values: Any) -> dict[str, Any]:
    """A link to `operation_id`: each value is `path.NAME`, `query.NAME` (a parameter) or
    `requestBody` (a body, runtime expressions inside), e.g.
    `link("get_x", "...", **{"path.x_id": "$response.body#/id"})`."""
    parameters = {k: v for k, v in values.items() if k != "requestBody"}
    out: dict[str, Any] = {"operationId": operation_id, "description": description}
    if parameters:
        out["parameters"] = parameters
    if "requestBody" in values:
        out["requestBody"] = values["requestBody"]
    return out


def links(status: int, description: str, **named: dict[str, Any]) -> dict[int | str, Any]:
    """A `responses=` entry declaring `named` links on the `status` response."""
    return {status: {"description": description, "links": named}}


METER = "$response.body#/meter_id"
meter_links = {
    "GetMeter": link("get_meter_v1_meters__meter__get", "the meter", **{"path.meter": METER}),
    "ApproveMeter": link(
        "approve_meter_v1_meters__meter__approval_post",
        "approve it (registrar)",
        **{"path.meter": METER},
    ),
    "SuspendMeter": link(
        "suspend_meter_v1_meters__meter__suspension_post",
        "suspend it (registrar)",
        **{"path.meter": METER},
    ),
    "PostReading": link(
        "post_reading_v1_energy_readings_post",
        "a reading of it",
        requestBody={"meterId": METER},
    ),
    "GetConsumption": link(
        "get_consumption_v1_energy_consumption_get",
        "its consumption",
        **{"query.meterId": METER},
    ),
    "GetGeneration": link(
        "get_generation_v1_energy_generation_get",
        "its generation",
        **{"query.meterId": METER},
    ),
}

ORDER = "$response.body#/id"
order_links = {
    "GetOrder": link(
        "get_order_v1_trading_orders__order_id__get", "the order", **{"path.order_id": ORDER}
    ),
    "CancelOrder": link(
        "cancel_order_v1_trading_orders__order_id__delete",
        "cancel it",
        **{"path.order_id": ORDER},
    ),
}
api_key_links = {
    "RevokeApiKey": link(
        "revoke_api_key_v1_auth_api_keys__key_id__delete",
        "revoke it",
        **{"path.key_id": "$response.body#/id"},
    ),
}
registration_links = {
    "Login": link(
        "login_v1_auth_login_post",
        "sign in with the same credentials",
        requestBody={"email": "$request.body#/email", "password": "$request.body#/password"},
    ),
}
REFRESH = {"refresh_token": "$response.body#/refresh_token"}
token_links = {
    "Refresh": link(
        "refresh_v1_auth_refresh_post", "rotate the refresh token", requestBody=REFRESH
    ),
    "Logout": link("logout_v1_auth_logout_post", "revoke the login", requestBody=REFRESH),
}

"""Errors leave the API as RFC 9457 problem details with a stable type per error."""

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from pydantic import BaseModel

from backend.core.errors import Conflict, NotFound, RateLimited
from backend.main import create_app


class Payload(BaseModel):
    quantity_wh: int


@pytest.fixture
def client():
    app = create_app()
    router = APIRouter()

    @router.get("/boom/{kind}")
    def boom(kind: str):
        errors = {
            "missing": NotFound("trade 7 does not exist", trade_id=7),
            "conflict": Conflict("already settled"),
            "slow": RateLimited("slow down", retry_after=3),
        }
        if kind in errors:
            raise errors[kind]
        raise RuntimeError("secret internals")

    @router.post("/echo")
    def echo(payload: Payload):
        return payload

    app.include_router(router)
    return TestClient(app, raise_server_exceptions=False)


def test_domain_error_becomes_a_problem_with_extensions(client):
    reply = client.get("/boom/missing")
    assert reply.status_code == 404
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json() == {
        "type": "https://gridledger.dev/problems/not-found",
        "title": "Resource not found",
        "status": 404,
        "detail": "trade 7 does not exist",
        "instance": "/boom/missing",
        "trade_id": 7,
    }


def test_each_error_family_has_its_status_and_type(client):
    assert client.get("/boom/conflict").json()["type"].endswith("/conflict")
    slow = client.get("/boom/slow")
    assert (slow.status_code, slow.headers["retry-after"]) == (429, "3")


def test_validation_errors_list_the_fields(client):
    reply = client.post("/echo", json={"quantity_wh": "lots"})
    body = reply.json()
    assert reply.status_code == 422 and body["type"].endswith("/validation-error")
    assert body["errors"][0]["loc"] == ["body", "quantity_wh"]


def test_unexpected_errors_hide_internals(client):
    reply = client.get("/boom/other")
    assert reply.status_code == 500
    assert "secret" not in reply.text and reply.json()["type"].endswith("/internal-error")


def test_unknown_route_is_a_problem_too(client):
    reply = client.get("/nowhere")
    assert reply.status_code == 404 and reply.json()["type"].endswith("/not-found")

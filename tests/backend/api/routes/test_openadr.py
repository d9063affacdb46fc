"""`/v1/openadr/vens` (operators): enrol a VEN with a development-CA certificate whose
fingerprint registers, list with last contact and poll, revoke; participants are refused and
bad input is a problem document."""

from __future__ import annotations

import uuid

import pytest
from cryptography import x509
from fastapi.testclient import TestClient

from backend.api.deps import get_db
from backend.core.config import Settings, get_settings
from backend.core.dev_ca import fingerprint
from backend.main import create_app
from backend.openadr import services
from backend.openadr.models import Ven
from tests.fixtures.api import bearer_for
from tests.fixtures.meters import seed_meters


@pytest.fixture
def api(db_session, tmp_path):
    config = Settings(_env_file=None, data_dir=tmp_path)
    app = create_app()
    app.dependency_overrides[get_db] = lambda: db_session
    app.dependency_overrides[get_settings] = lambda: config
    owner, _other, solar, _house = seed_meters(db_session)

    def bearer(*roles: str) -> dict[str, str]:
        return bearer_for(db_session, config, *roles)

    return TestClient(app, client=("127.0.0.1", 50000)), bearer, owner, solar, db_session


def test_operators_enrol_list_and_revoke_vens(api):
    client, bearer, owner, solar, session = api
    operator = bearer("operator")
    reply = client.post(
        "/v1/openadr/vens",
        json={"ven_name": "house-7", "account_id": str(owner.id), "meter_ids": [solar.meter_id]},
        headers=operator,
    )
    assert reply.status_code == 201, reply.text
    enrolled = reply.json()
    cert = x509.load_pem_x509_certificate(enrolled["certificate_pem"].encode())
    assert fingerprint(cert) == enrolled["cert_fingerprint"]
    assert "PRIVATE KEY" in enrolled["private_key_pem"]
    assert enrolled["meter_ids"] == [solar.meter_id] and enrolled["registered"] is False
    ven_id = enrolled["ven_id"]
    # the issued certificate is what the VTN registers the VEN with
    ven = services.register(
        session,
        ven_id=ven_id,
        ven_name="house-7",
        connection_fingerprint=services.openadr_fingerprint(fingerprint(cert)),
    )
    assert ven is not None

    listed = client.get("/v1/openadr/vens", headers=operator).json()
    assert [(v["ven_id"], v["registered"]) for v in listed] == [(ven_id, True)]
    assert "private_key_pem" not in listed[0]

    revoked = client.delete(f"/v1/openadr/vens/{ven_id}", headers=operator)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["active"] is False and revoked.json()["registered"] is False
    assert client.get("/v1/openadr/vens", headers=operator).json() == []
    assert len(client.get("/v1/openadr/vens?include_revoked=true", headers=operator).json()) == 1
    again = client.delete(f"/v1/openadr/vens/{ven_id}", headers=operator)
    assert again.status_code == 404 and again.json()["type"].endswith("/ven-not-found")
    row = session.get(Ven, ven_id)
    assert row is not None and row.revoked_at is not None


def test_a_fingerprint_of_another_ca_enrols_without_a_key(api):
    client, bearer, owner, _solar, _session = api
    reply = client.post(
        "/v1/openadr/vens",
        json={"ven_name": "bms", "account_id": str(owner.id), "cert_fingerprint": "AB" * 32},
        headers=bearer("operator"),
    )
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["cert_fingerprint"] == "ab" * 32 and body["private_key_pem"] is None


def test_bad_enrolments_are_problem_documents(api):
    client, bearer, owner, _solar, _session = api
    operator = bearer("operator")
    base = {"ven_name": "house-8", "account_id": str(owner.id)}
    unknown_meter = client.post(
        "/v1/openadr/vens", json={**base, "meter_ids": ["0xnope"]}, headers=operator
    )
    assert unknown_meter.status_code == 422
    assert unknown_meter.json()["type"].endswith("/openadr-ven-invalid")
    unknown_account = client.post(
        "/v1/openadr/vens", json={**base, "account_id": str(uuid.uuid4())}, headers=operator
    )
    assert unknown_account.json()["type"].endswith("/openadr-ven-invalid")
    assert client.post("/v1/openadr/vens", json=base, headers=operator).status_code == 201
    twice = client.post("/v1/openadr/vens", json=base, headers=operator)
    assert twice.status_code == 409 and twice.json()["type"].endswith("/ven-exists")


def test_participants_are_refused(api):
    client, bearer, owner, _solar, _session = api
    participant = bearer("participant")
    assert client.get("/v1/openadr/vens", headers=participant).status_code == 403
    reply = client.post(
        "/v1/openadr/vens",
        json={"ven_name": "x", "account_id": str(owner.id)},
        headers=participant,
    )
    assert reply.status_code == 403

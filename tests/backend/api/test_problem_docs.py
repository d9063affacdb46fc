"""The OpenAPI document's error responses (backend/api/problem_docs.py) and the Content-Type of
errors the app sends outside any route (unknown path, wrong method)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from backend.main import create_app

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def test_every_error_response_is_a_problem_document():
    document = create_app().openapi()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            errors = {s: r for s, r in operation["responses"].items() if int(s) >= 400}
            assert errors, f"{method} {path} documents no error response"
            for status, response in errors.items():
                if path == "/health" and status == "503":
                    continue  # the degraded health report itself
                assert response["content"] == PROBLEM, f"{method} {path} {status}"
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_statuses_follow_the_route_dependencies():
    paths = create_app().openapi()["paths"]
    # 403: an API key without the read scope
    assert set(paths["/v1/trading/orders/{order_id}"]["get"]["responses"]) == {
        "200", "401", "403", "404", "422", "429", "503"
    }  # fmt: skip
    assert "403" in paths["/v1/admin/accounts"]["get"]["responses"]  # require_role
    assert "401" not in paths["/v1/public/summary"]["get"]["responses"]  # anonymous
    assert "401" in paths["/v1/auth/login"]["post"]["responses"]  # raises(Unauthenticated)


def test_unknown_route_and_method_answer_problem_json():
    client = TestClient(create_app())
    for response, status in (
        (client.get("/v1/no-such-route"), 404),
        (client.put("/v1/trading/markets"), 405),
    ):
        assert response.status_code == status
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == status


def test_every_429_documents_retry_after():
    """The rate limit answers 429 with a Retry-After header (tests/backend/api/test_problems.py);
    a generated client learns it from the document."""
    paths = create_app().openapi()["paths"]
    limited = [
        operation["responses"]["429"]
        for operations in paths.values()
        for operation in operations.values()
        if "429" in operation["responses"]
    ]
    assert len(limited) > 20
    for response in limited:
        assert response["headers"]["Retry-After"]["schema"] == {"type": "integer", "minimum": 0}

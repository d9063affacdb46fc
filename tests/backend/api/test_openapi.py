"""The OpenAPI dump (backend/api/openapi.py) and the dashboard's client generated from it: the
committed backend/dashboard/src/api-schema.d.ts must be what openapi-typescript makes of the
app's document today (else `npm run gen:api`), so the dashboard never calls a stale API."""

from __future__ import annotations

import json
from pathlib import Path

from backend.api.openapi import document, main
from tests.fixtures.javascript import run_npm_tool

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = ROOT / "backend" / "dashboard" / "src" / "api-schema.d.ts"


def generate(openapi_file: Path, out: Path) -> str:
    """What `npm run gen:api` writes for `openapi_file`."""
    run_npm_tool(
        "openapi-typescript",
        str(openapi_file),
        "--default-non-nullable",
        "false",
        "--output",
        str(out),
    )
    return out.read_text()


def test_dump_writes_the_apps_document(tmp_path):
    target = tmp_path / "openapi.json"
    main([str(target)])
    written = json.loads(target.read_text())
    assert written == document()
    assert "/v1/chain" in written["paths"] and "/v1/trading/orders" in written["paths"]


def test_committed_dashboard_client_types_are_fresh(tmp_path):
    target = tmp_path / "openapi.json"
    main([str(target)])
    fresh = generate(target, tmp_path / "api-schema.d.ts")
    assert SCHEMA.read_text() == fresh, (
        "backend/dashboard/src/api-schema.d.ts is stale: run `npm run gen:api` and commit it"
    )


def test_a_changed_api_makes_the_committed_client_stale(tmp_path):
    """The check above can fail: a route the app no longer has changes the generated text."""
    changed = document()
    del changed["paths"]["/v1/chain"]
    target = tmp_path / "openapi.json"
    target.write_text(json.dumps(changed))
    assert SCHEMA.read_text() != generate(target, tmp_path / "api-schema.d.ts")

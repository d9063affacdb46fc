"""`python -m backend.api.openapi [FILE]`: the API's OpenAPI document as JSON, to stdout or
FILE. The dashboard's typed client is generated from it (`npm run gen:api`: openapi-typescript
writes backend/dashboard/src/api-schema.d.ts; tests/backend/api/test_openapi.py fails when the
committed file no longer matches the app)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from backend.main import create_app


def document() -> dict[str, Any]:
    return create_app().openapi()


def main(argv: list[str]) -> None:
    text = json.dumps(document(), indent=1) + "\n"
    if argv:
        target = Path(argv[0])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main(sys.argv[1:])

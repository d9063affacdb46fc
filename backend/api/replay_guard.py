"""Before an idempotent response is replayed, the caller must still be allowed in: the stored
answer of a request made with an API key that has since been revoked, or by an account since
disabled, is not handed out again (backend/api/middleware.py)."""

from __future__ import annotations

from collections.abc import Generator

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Scope

from backend.api.deps import current_account, get_db
from backend.api.middleware import app_settings
from backend.api.problems import problem_of
from backend.core.errors import GridLedgerError
from backend.core.kv import store_for


async def caller_still_allowed(scope: Scope, headers: Headers) -> Response | None:
    authorization, api_key = headers.get("authorization"), headers.get("x-api-key")
    if not authorization and not api_key:
        return None  # sign-up and sign-in: nobody to re-check
    overrides = getattr(scope.get("app"), "dependency_overrides", {})
    settings = app_settings(scope)

    def authenticate() -> None:
        produced = overrides.get(get_db, get_db)()
        session = next(produced) if isinstance(produced, Generator) else produced
        try:
            current_account(session, settings, store_for(settings), authorization, api_key)
        finally:
            if isinstance(produced, Generator):
                produced.close()

    try:
        await run_in_threadpool(authenticate)
    except GridLedgerError as error:
        return problem_of(error, scope["path"])
    return None

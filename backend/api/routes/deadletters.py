"""`/v1/admin/dead-letters`: messages that could not be processed (operators and admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.accounts.models import Role
from backend.api.deps import SessionDep, require_role
from backend.deadletters import services
from backend.deadletters.schemas import DeadLetterPublic
from backend.market.schemas import Page

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[require_role(Role.OPERATOR)])


@router.get("/dead-letters", response_model=Page[DeadLetterPublic])
def dead_letters(
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    source: Annotated[str | None, Query(max_length=16)] = None,
) -> Page[DeadLetterPublic]:
    """Poison messages, newest first: each was acknowledged (never redelivered) and kept here
    with why it could not be processed, its raw payload (cut to a cap) and how often it came."""
    items, next_cursor = services.entries(session, cursor=cursor, limit=limit, source=source)
    return Page(items=items, next_cursor=next_cursor)

"""Dependencies routes take: `SessionDep`, `SettingsDep` (auth dependencies join here)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends
from sqlmodel import Session

from backend.core.config import Settings, get_settings
from backend.core.db import get_engine


def get_db() -> Iterator[Session]:
    with Session(get_engine()) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

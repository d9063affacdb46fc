"""`component_heartbeats`: one row per long-running component, rewritten while it works."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from backend.core.utc import utc_now


class ComponentHeartbeat(SQLModel, table=True):
    """The last moment (wall clock, UTC) component `component` showed it was working: a
    matching round, an MQTT loop turn, a beat tick. A database row rather than a Redis key,
    so that the embedded `make run` (SQLite, no Redis) has heartbeats too."""

    __tablename__ = "component_heartbeats"

    component: str = Field(primary_key=True, max_length=32)
    beat_at: datetime = Field(default_factory=utc_now)
    pid: int
    host: str = Field(max_length=255)

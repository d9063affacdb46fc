"""Writing and reading component heartbeats (a row per component in `component_heartbeats`)."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from backend.core.db import table_of
from backend.core.utc import utc_now
from backend.health.models import ComponentHeartbeat
from backend.settlement.sql import insert_ignoring_conflicts

log = logging.getLogger("gridledger.health")

MATCHER, MQTT, BEAT, DISPATCHER, VTN = "matcher", "mqtt", "beat", "dispatcher", "vtn"
WATCHED = (MATCHER, MQTT, BEAT, DISPATCHER, VTN)  # the components /health expects heartbeats from


def write_heartbeat(engine: Engine, component: str) -> None:
    """Upsert `component`'s row with now, this pid and host (update, else insert-ignore: a
    concurrent first insert by a twin process is not an error)."""
    t = table_of(ComponentHeartbeat)
    values = {"beat_at": utc_now(), "pid": os.getpid(), "host": socket.gethostname()[:255]}
    with Session(engine) as session:
        updated = session.connection().execute(
            update(t).where(t.c.component == component).values(**values)
        )
        if not updated.rowcount:
            statement = insert_ignoring_conflicts(session, ComponentHeartbeat, ["component"])
            session.connection().execute(statement, [{"component": component, **values}])
        session.commit()


class Heartbeat:
    """`beat()` from a component's loop: writes at most every `interval_s`, and a database
    that is briefly unavailable costs a log line, never the component."""

    def __init__(
        self,
        engine: Engine,
        component: str,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine, self.component, self.interval_s, self.clock = (
            engine,
            component,
            interval_s,
            clock,
        )
        self.last: float | None = None

    def beat(self) -> None:
        now = self.clock()
        if self.last is not None and now - self.last < self.interval_s:
            return
        try:
            write_heartbeat(self.engine, self.component)
            self.last = now
        except SQLAlchemyError as exc:
            log.warning("heartbeat of %s not written: %s", self.component, exc)


def heartbeats(session: Session) -> dict[str, ComponentHeartbeat]:
    return {row.component: row for row in session.exec(select(ComponentHeartbeat)).all()}

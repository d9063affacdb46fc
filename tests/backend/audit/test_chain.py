"""The audit log chains every entry to the one before; the database refuses to change it, and
`verify` catches a change or deletion made with the trigger turned off."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from backend.audit import chain as audit
from backend.audit.chain import AuditAction
from backend.audit.models import GENESIS_HASH, AuditEntry
from backend.core.config import PROJECT_ROOT
from backend.core.db import make_engine
from backend.core.migrate import upgrade


def fill(session: Session, count: int) -> list[AuditEntry]:
    actor = uuid.uuid4()
    written = [
        audit.record(
            session,
            AuditAction.LOGIN,
            actor_id=actor,
            subject=f"user{i}@example.org",
            details={"n": i},
        )
        for i in range(count)
    ]
    session.commit()
    return written


@pytest.fixture
def pg_session(fresh_pg_url):
    engine = make_engine(fresh_pg_url)
    with Session(engine) as session:
        yield session
    engine.dispose()


def test_entries_chain_and_verify(pg_session):
    written = fill(pg_session, 5)
    assert written[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(written))
    result = audit.verify(pg_session)
    assert result.intact and result.entries == 5 and result.head_hash == written[-1].hash


def test_the_database_refuses_updates_and_deletes(pg_session):
    fill(pg_session, 2)
    for statement in ("UPDATE audit_log SET subject = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            pg_session.execute(text(statement))
        pg_session.rollback()
    assert audit.verify(pg_session).entries == 2


def without_trigger(session: Session, statement: str, **params: object) -> None:
    session.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
    session.execute(text(statement), params)
    session.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))
    session.commit()


def test_verify_finds_a_changed_entry(pg_session):
    written = fill(pg_session, 4)
    without_trigger(
        pg_session,
        "UPDATE audit_log SET details = :details WHERE id = :id",
        details='{"n":99}',
        id=written[2].id,
    )
    result = audit.verify(pg_session)
    assert not result.intact and result.first_broken_id == written[2].id
    assert result.problem == "the entry was changed" and result.entries == 2


def test_verify_finds_a_deleted_entry(pg_session):
    written = fill(pg_session, 4)
    without_trigger(pg_session, "DELETE FROM audit_log WHERE id = :id", id=written[1].id)
    result = audit.verify(pg_session)
    assert result.first_broken_id == written[2].id
    assert result.problem == "an earlier entry was deleted"


def test_sqlite_refuses_changes_too(tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        fill(session, 3)
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(text("DELETE FROM audit_log"))
        session.rollback()
        assert audit.verify(session).intact
    engine.dispose()


def test_the_verify_command_exits_1_on_a_broken_chain(fresh_pg_url, tmp_path):
    engine = make_engine(fresh_pg_url)
    with Session(engine) as session:
        head = fill(session, 3)[-1].hash
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GRIDLEDGER_")}
    environment |= {"GRIDLEDGER_DATABASE_URL": fresh_pg_url, "GRIDLEDGER_DATA_DIR": str(tmp_path)}

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "backend.audit", "verify"],
            env=environment,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    intact = run()
    assert intact.returncode == 0 and f"3 entries, head {head}" in intact.stdout
    with Session(engine) as session:
        first = session.exec(select(AuditEntry.id).order_by(col(AuditEntry.id))).first()
        without_trigger(
            session, "UPDATE audit_log SET subject = 'mallory' WHERE id = :id", id=first
        )
    engine.dispose()
    broken = run()
    assert broken.returncode == 1 and f"BROKEN at entry {first}" in broken.stderr

"""The beat lock without Redis: PostgreSQL's advisory lock (per schema, freed with the holder's
session) and the file lock of the embedded set-up. Redis: tests/backend/workers/test_beat.py."""

from __future__ import annotations

from sqlalchemy import text

from backend.core.db import make_engine
from backend.workers.beat_lock import FileBeatLock, PostgresBeatLock


def test_postgres_beat_lock_has_one_holder_and_frees_when_its_session_dies(fresh_pg_url):
    engine = make_engine(fresh_pg_url)
    holder, standby = PostgresBeatLock(engine), PostgresBeatLock(engine)
    try:
        assert holder.acquire() and holder.renew()
        assert not standby.acquire()
        assert holder.connection is not None
        pid = holder.connection.execute(text("SELECT pg_backend_pid()")).scalar()
        holder.connection.commit()
        with engine.connect() as admin:  # the holder's host dies: its session goes away
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert not holder.renew()  # it must stop scheduling
        assert standby.acquire() and standby.renew()
    finally:
        holder.release()
        standby.release()
        engine.dispose()


def test_file_beat_lock_has_one_holder_until_released(tmp_path):
    path = tmp_path / "locks" / "beat.lock"
    holder, standby = FileBeatLock(path), FileBeatLock(path)
    assert holder.acquire() and holder.renew()
    assert not standby.acquire()
    holder.release()
    assert standby.acquire()
    standby.release()

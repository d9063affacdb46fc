"""The VTN's in-memory view of the VENs: a refresh drops revoked VENs and picks up new ones,
the VTN's own registrations survive a refresh that read the database before them; and the
replay cache that keeps openleadr's rule in O(1)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from openleadr import messaging
from sqlmodel import Session

from backend.core.db import make_engine
from backend.openadr import known as known_module
from backend.openadr import registry, replay, services
from backend.openadr.known import KnownVens
from tests.fixtures.meters import seed_meters
from tests.fixtures.openadr import FP


def test_refresh_follows_the_database_and_keeps_local_changes(fresh_pg_url):
    engine = make_engine(fresh_pg_url)
    with Session(engine) as session:
        owner, *_ = seed_meters(session)
        for name in ("a", "b"):
            services.add_ven(
                session,
                ven_id=f"ven-{name}",
                ven_name=name,
                account_id=owner.id,
                cert_fingerprint=FP,
            )
        session.commit()
        owner_id = owner.id
    known = KnownVens(engine)
    assert known.refresh() == 2
    assert known.get("ven-a")["registration_id"] is None
    assert known.get("ven-nobody") is None

    with Session(engine) as session:
        registry.revoke_ven(session, ven_id="ven-b")
        services.add_ven(
            session, ven_id="ven-c", ven_name="c", account_id=owner_id, cert_fingerprint=FP
        )
        session.commit()
    assert known.get("ven-c") is not None  # not in the view yet: from the database
    known.refresh()
    assert set(known.view) == {"ven-a", "ven-c"}

    # a refresh that read the database before this VTN's registration keeps the registration
    stale_view = {k: dict(v) for k, v in known.view.items()}
    with Session(engine) as session:
        ven = services.register(session, ven_id="ven-a", ven_name="a", connection_fingerprint=None)
        session.commit()
        known.changed(ven)
    assert known.get("ven-a")["registration_id"] == ven.registration_id
    known.local["ven-a"] = (time.monotonic(), known.local["ven-a"][1])
    known.view = stale_view
    known.refresh()
    assert known.get("ven-a")["registration_id"] == ven.registration_id
    # once the grace is over, the database alone counts
    known.local["ven-a"] = (time.monotonic() - 2 * known_module.LOCAL_GRACE_S - 1, None)
    known.refresh()
    assert known.get("ven-a") is not None and "ven-a" not in known.local
    engine.dispose()


def test_the_replay_cache_drops_old_entries_and_keeps_new_ones():
    messaging.NONCE_CACHE.clear()
    replay._ORDER.clear()
    old = datetime.now(UTC) - timedelta(seconds=30)
    replay.update_nonce_cache(old, "old")
    now = datetime.now(UTC)
    replay.update_nonce_cache(now, "new")
    assert {(now, "new")} == messaging.NONCE_CACHE
    replay.install()
    assert messaging._update_nonce_cache is replay.update_nonce_cache

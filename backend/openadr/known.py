"""The VTN's in-memory view of the known VENs, so a poll costs no database round trip.

`refresh()` (the VTN's housekeeping loop, every `vtn_registry_refresh_s`) reloads every active
VEN in one query; a VEN missing from the view is looked up in the database (one just enrolled
registers at once). Registrations and cancellations made by this VTN update the view at once
and survive a refresh that read the database before they committed. A VEN revoked through the
API is refused within one refresh interval.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from backend.openadr import services
from backend.openadr.errors import VenNotFound
from backend.openadr.models import Ven

VenInfo = dict[str, str | None]
LOCAL_GRACE_S = 5.0  # local changes outlive refreshes that started up to this long before them


def info_of(ven: Ven) -> VenInfo:
    return {
        "ven_id": ven.ven_id,
        "ven_name": ven.ven_name,
        "fingerprint": services.openadr_fingerprint(ven.cert_fingerprint),
        "registration_id": ven.registration_id,
    }


class KnownVens:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.view: dict[str, VenInfo] = {}
        self.local: dict[str, tuple[float, VenInfo | None]] = {}
        self.lock = threading.Lock()

    def get(self, ven_id: str) -> VenInfo | None:
        found = self.view.get(ven_id)
        if found is not None:
            return found
        with Session(self.engine) as session:
            try:
                ven = services.find_ven(session, ven_id=ven_id)
            except VenNotFound:
                return None
            info = info_of(ven)
        self.view[ven_id] = info
        return info

    def changed(self, ven: Ven) -> None:
        """This VTN registered or cancelled `ven` (committed)."""
        info = info_of(ven) if ven.active else None
        with self.lock:
            self.local[ven.ven_id] = (time.monotonic(), info)
            self._put(ven.ven_id, info)

    def _put(self, ven_id: str, info: VenInfo | None) -> None:
        if info is None:
            self.view.pop(ven_id, None)
        else:
            self.view[ven_id] = info

    def refresh(self) -> int:
        started = time.monotonic()
        with Session(self.engine) as session:
            vens = session.exec(select(Ven).where(col(Ven.active).is_(True))).all()
            fresh = {v.ven_id: info_of(v) for v in vens}
        with self.lock:
            for ven_id, (at, info) in list(self.local.items()):
                if at >= started - LOCAL_GRACE_S:
                    if info is None:
                        fresh.pop(ven_id, None)
                    else:
                        fresh[ven_id] = info
                else:
                    del self.local[ven_id]
            self.view = fresh
        return len(fresh)

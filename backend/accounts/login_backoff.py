"""Back-off per email after failed logins: from the Nth failure in a row (within
`login_failure_window_s`), each further attempt waits 1, 2, 4 … s, at most `login_backoff_max_s`,
whatever address it comes from. Guessing one account's password stops paying long before a
per-IP limit would notice a botnet. Counters live in the key-value store (Redis when configured:
shared by every API worker)."""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from backend.core.config import Settings
from backend.core.errors import RateLimited
from backend.core.kv import KeyValueStore


@dataclass
class LoginBackoff:
    store: KeyValueStore
    settings: Settings
    email: str

    @property
    def _key(self) -> str:
        return "gridledger:login:" + hashlib.sha256(self.email.strip().lower().encode()).hexdigest()

    def check(self) -> None:
        """Raises RateLimited while the email is backing off."""
        until = self.store.get(self._key + ":until")
        wait = float(until) - time.time() if until else 0
        if wait > 0:
            raise RateLimited(
                "too many failed logins for this email; wait before trying again",
                retry_after=math.ceil(wait),
            )

    def failed(self) -> None:
        failures = self.store.incr_window(
            self._key + ":failures", self.settings.login_failure_window_s
        )
        beyond = failures - self.settings.login_failures_before_backoff
        if beyond >= 0:
            delay = min(2**beyond, self.settings.login_backoff_max_s)
            self.store.put(self._key + ":until", str(time.time() + delay), math.ceil(delay))

    def succeeded(self) -> None:
        self.store.delete(self._key + ":failures")
        self.store.delete(self._key + ":until")

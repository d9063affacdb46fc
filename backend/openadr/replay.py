"""openleadr's replay protection with a cache that costs O(1) per message.

openleadr keeps the (timestamp, nonce) of every signed message of the last 5 s in a set and,
on each message, walks the whole set to drop old entries (`messaging._update_nonce_cache`):
at 100 messages a second that walk dominates a poll. `install()` swaps in the same rule with
the entries also kept in arrival order, so old ones leave from the front. The set stays
openleadr's (`messaging.NONCE_CACHE`), so its duplicate check is unchanged.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime

from openleadr import messaging

_ORDER: deque[tuple[datetime, str]] = deque()


def update_nonce_cache(timestamp: datetime, nonce: str) -> None:
    messaging.NONCE_CACHE.add((timestamp, nonce))
    _ORDER.append((timestamp, nonce))
    horizon = datetime.now(UTC) - messaging.REPLAY_PROTECT_MAX_TIME_DELTA
    while _ORDER and _ORDER[0][0] < horizon:
        messaging.NONCE_CACHE.discard(_ORDER.popleft())


def install() -> None:
    messaging._update_nonce_cache = update_nonce_cache

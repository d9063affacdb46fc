"""Per-client-IP limit for the routes anyone may call (sign-up, sign-in, refresh, SIWE): each
costs a password hash or a database row, so they must not be free to flood. A fixed one-minute
window in the key-value store (Redis when configured, shared by every API worker). Behind a
reverse proxy, run uvicorn with `--proxy-headers` and `--forwarded-allow-ips` so the client
address is the caller's, not the proxy's."""

from __future__ import annotations

import time

from fastapi import Depends, Request

from backend.api.deps import SettingsDep, StoreDep
from backend.core.errors import RateLimited


def throttle_client_ip(request: Request, settings: SettingsDep, store: StoreDep) -> None:
    address = request.client.host if request.client else "-"
    limit = settings.anonymous_rate_limit_per_minute
    now = time.time()
    count = store.incr_window(f"gridledger:rl:ip:{address}:{int(now // 60)}", 61)
    if count > limit:
        raise RateLimited(
            f"more than {limit} unauthenticated requests this minute from {address}",
            retry_after=60 - int(now) % 60,
        )


ThrottledByClientIp = Depends(throttle_client_ip)

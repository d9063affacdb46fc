"""`python -m scripts.neighbourhood`: drive the simulated neighbourhood against a running
stack (what `make run` starts after the API is up). Settings: GRIDLEDGER_SIM_*."""

from __future__ import annotations

import logging
import signal
import ssl
import sys
import time

import httpx

from backend.core.config import get_settings
from backend.core.tls import http_verify
from scripts.neighbourhood.simulator import Neighbourhood, Stats, iso


def wait_for_api(url: str, verify: ssl.SSLContext | bool = True, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=5, verify=verify).status_code in (200, 503):
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"neighbourhood: no API at {url}")
        time.sleep(0.2)


def main() -> int:
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `make run` stops us with SIGTERM
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    log = logging.getLogger("gridledger.neighbourhood")
    settings = get_settings()
    url = settings.api_url
    wait_for_api(url, http_verify(settings))
    neighbourhood = Neighbourhood(settings, url)
    started = time.monotonic()
    fresh = neighbourhood.setup()
    log.info(
        "set up %d participants in %.1f s (%s chain)",
        len(neighbourhood.agents),
        time.monotonic() - started,
        "new" if fresh else "resumed",
    )
    print("neighbourhood: ready", flush=True)

    def status(slot: int, stats: Stats) -> None:
        if slot % 3600 == 0:
            log.info(
                "%s orders=%d rejected=%d readings=%d (+%d over MQTT) rec_offers=%d claims=%d",
                iso(slot),
                stats.orders,
                stats.rejected,
                stats.readings,
                stats.published,
                stats.rec_offers,
                stats.claims,
            )

    try:
        neighbourhood.run(settings.sim_hours, status)
    except KeyboardInterrupt:
        return 0
    finally:
        neighbourhood.vpp.stop_devices()
        if neighbourhood.publisher is not None:
            neighbourhood.publisher.close()
    stats = neighbourhood.stats
    print(
        f"neighbourhood: done orders={stats.orders} rejected={stats.rejected} "
        f"readings={stats.readings} published={stats.published} "
        f"rec_offers={stats.rec_offers} claims={stats.claims}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

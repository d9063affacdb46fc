"""`python -m scripts.vens`: the simulated VENs of `make run` (started after the VTN). Waits
until the neighbourhood has registered the meters that run VENs (GRIDLEDGER_SIM_VENS),
enrols them, and runs their openleadr clients until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.openadr.enrolment import VenCredentials
from scripts.vens.fleet import SimulatedVen, build_ven, enrol_fleet, wanted_meters

log = logging.getLogger("gridledger.vens")
WAIT_FOR_METERS_S = 120.0
RETRY_S = 5.0


async def serve() -> None:
    settings, engine = get_settings(), get_engine()
    wanted = len(wanted_meters(settings))
    if not wanted:
        log.info("GRIDLEDGER_SIM_VENS=0: no simulated VENs")
        return
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    deadline = loop.time() + WAIT_FOR_METERS_S
    fleet = await asyncio.to_thread(enrol_fleet, engine, settings)
    while len(fleet) < wanted and loop.time() < deadline and not stop.is_set():
        await asyncio.sleep(2)  # the neighbourhood registers its meters after the API is up
        fleet = await asyncio.to_thread(enrol_fleet, engine, settings)

    async def registered(creds: VenCredentials, meter_id: str) -> SimulatedVen | None:
        """A running VEN, retried every RETRY_S while the VTN refuses or is not up yet."""
        while not stop.is_set():
            ven = build_ven(settings, engine, creds, meter_id, seed=settings.sim_seed)
            try:
                await ven.client.run()
            except Exception as exc:  # the VTN is not answering yet: openleadr raises
                log.info("%s: VTN not reachable (%s), retrying", ven.name, exc)
            if ven.client.registration_id:
                return ven
            await ven.client.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RETRY_S)
        return None

    started = await asyncio.gather(*(registered(c, m) for c, m in fleet.values()))
    vens = [v for v in started if v is not None]
    log.info("%d simulated VENs polling %s", len(vens), settings.vtn_url)
    await stop.wait()
    for ven in vens:
        await ven.client.stop()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("openleadr").setLevel(logging.WARNING)
    asyncio.run(serve())


if __name__ == "__main__":
    main()

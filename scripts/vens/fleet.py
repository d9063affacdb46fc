"""The simulated VENs: which meters get one, their enrolment (certificates from the
development CA, idempotent across restarts), and the openleadr client each runs.

Each VEN registers, polls every `vtn_poll_interval_s`, answers each event optOut with
probability `sim_ven_opt_out_probability` (seeded per VEN, else optIn), and reports its
meter's usage as TELEMETRY_USAGE `power_real` (W: the latest 15-minute reading's import
times four) plus a TELEMETRY_STATUS load-control level (1 normal, 0 shed while an opted-in
event runs).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from openleadr import OpenADRClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from backend.core.config import Settings
from backend.core.dev_ca import ensure_ca, issue_client_certificate
from backend.meters.models import Meter, MeterReading
from backend.openadr.enrolment import VenCredentials, enrol_ven
from backend.openadr.management import dev_ca_dir
from backend.openadr.models import Ven

log = logging.getLogger("gridledger.vens")

BATTERY_METER = "battery-meter"
INTERVALS_PER_HOUR = 4  # Wh per 15 minutes -> average W


def wanted_meters(settings: Settings) -> list[str]:
    """The meter names of the neighbourhood that run a VEN: the first `sim_vens` prosumer
    households (scripts/neighbourhood names them prosumerNN-meter) and the battery."""
    households = min(settings.sim_vens, settings.sim_prosumers)
    if settings.sim_vens == 0:
        return []
    return [f"prosumer{i:02d}-meter" for i in range(1, households + 1)] + [BATTERY_METER]


def ven_name(meter_name: str) -> str:
    return f"sim-{meter_name.removesuffix('-meter')}"


def enrol_fleet(engine: Engine, settings: Settings) -> dict[str, tuple[VenCredentials, str]]:
    """Enrol a VEN for each wanted meter that exists (meter owner's account): {VEN name:
    (credentials, meter_id)}. A VEN known from an earlier run keeps its id; its certificate
    files are reused, or issued again (and the fingerprint updated) when they are gone."""
    out_dir = settings.data_dir / "vens"
    tls_dir = dev_ca_dir(settings)
    fleet: dict[str, tuple[VenCredentials, str]] = {}
    with Session(engine) as session:
        meters = session.exec(
            select(Meter).where(col(Meter.name).in_(wanted_meters(settings)))
        ).all()
        for meter in meters:
            name = ven_name(meter.name)
            known = session.exec(select(Ven).where(Ven.ven_name == name)).first()
            if known is None:
                creds = enrol_ven(
                    session,
                    tls_dir=tls_dir,
                    out_dir=out_dir,
                    ven_name=name,
                    account_id=meter.owner_id,
                    meter_ids=[meter.meter_id],
                    ven_id=f"ven-{name}",
                )
            else:
                creds = reuse(session, known, tls_dir=tls_dir, out_dir=out_dir)
            fleet[name] = (creds, meter.meter_id)
        session.commit()
    return fleet


def reuse(session: Session, ven: Ven, *, tls_dir: Path, out_dir: Path) -> VenCredentials:
    ca = ensure_ca(tls_dir)
    cert_file, key_file = out_dir / f"{ven.ven_name}.pem", out_dir / f"{ven.ven_name}.key"
    if not (cert_file.exists() and key_file.exists()):
        issued = issue_client_certificate(ca, ven.ven_name)
        out_dir.mkdir(parents=True, exist_ok=True)
        cert_file.write_bytes(issued.cert_pem())
        key_file.write_bytes(issued.key_pem())
        key_file.chmod(0o600)
        ven.cert_fingerprint = issued.fingerprint
        ven.registration_id = None
    ven.active = True
    session.add(ven)
    session.flush()
    return VenCredentials(
        ven.ven_id, ven.ven_name, cert_file, key_file, ca.cert_file, ven.cert_fingerprint
    )


def latest_power_w(engine: Engine, meter_id: str) -> float:
    """The meter's latest 15-minute import as average W (0 before its first reading)."""
    with Session(engine) as session:
        wh = session.exec(
            select(MeterReading.import_wh)
            .where(MeterReading.meter_id == meter_id)
            .order_by(col(MeterReading.interval_start).desc())
            .limit(1)
        ).first()
    return float((wh or 0) * INTERVALS_PER_HOUR)


@dataclass
class SimulatedVen:
    """One VEN: its openleadr client and what it decided."""

    name: str
    meter_id: str
    client: OpenADRClient
    rng: random.Random
    opt_out_probability: float
    answers: list[str] = field(default_factory=list)
    shedding_until: datetime | None = None

    async def on_event(self, event: dict[str, Any]) -> str:
        answer = "optOut" if self.rng.random() < self.opt_out_probability else "optIn"
        self.answers.append(answer)
        if answer == "optIn":
            period = event.get("active_period") or {}
            start, duration = period.get("dtstart"), period.get("duration")
            if isinstance(start, datetime) and isinstance(duration, timedelta):
                self.shedding_until = start + duration
        log.info("%s answers %s", self.name, answer)
        return answer

    def load_control_level(self) -> float:
        shedding = self.shedding_until is not None and datetime.now(UTC) < self.shedding_until
        return 0.0 if shedding else 1.0


def build_ven(
    settings: Settings,
    engine: Engine,
    creds: VenCredentials,
    meter_id: str,
    *,
    seed: int,
    report_every: timedelta = timedelta(seconds=60),
) -> SimulatedVen:
    tls = settings.tls_enabled
    client = OpenADRClient(
        ven_name=creds.ven_name,
        vtn_url=settings.vtn_url,
        ven_id=creds.ven_id,
        cert=str(creds.cert_file),
        key=str(creds.key_file),
        ca_file=str(settings.tls_ca_file if tls else creds.ca_file),
        show_fingerprint=False,
    )
    ven = SimulatedVen(
        creds.ven_name,
        meter_id,
        client,
        random.Random(f"ven|{seed}|{creds.ven_name}"),
        settings.sim_ven_opt_out_probability,
    )
    client.add_handler("on_event", ven.on_event)
    client.add_report(
        callback=lambda: latest_power_w(engine, meter_id),
        resource_id=meter_id,
        measurement="power_real",
        unit="W",
        sampling_rate=report_every,
        report_duration=timedelta(hours=1),
    )
    client.add_report(
        callback=ven.load_control_level,
        resource_id=meter_id,
        report_name="TELEMETRY_STATUS",
        sampling_rate=report_every,
        report_duration=timedelta(hours=1),
    )
    return ven

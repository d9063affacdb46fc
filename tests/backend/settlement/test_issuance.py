"""REC issuance from metered export: one certificate per device-hour, exactly once."""

from __future__ import annotations

from sqlmodel import select

from backend.market.orders import default_meter_id
from backend.meters.models import Meter
from backend.resources.models import DerResource
from backend.settlement.issuance import issue_certificates, record_due_hours
from backend.settlement.models import RecIssuance


def test_hourly_certificates_issued_once(market):
    workload = market.devnet.workload
    market.catch_up()  # devices into the mirror
    person = workload.people[0]
    device_id = workload.devices[person.address]
    meter = "0x" + default_meter_id(person.address).hex()
    now = market.ctx.now()
    first_hour = (now // 3600 - 5) * 3600
    exports = {(meter, first_hour + 900 * q): 100 + q for q in range(12)}  # three full hours
    exports[(meter, first_hour + 3 * 3600)] = 50  # a fourth hour with one quarter: waits
    market.meter_readings(exports)
    # another issuer got to the second hour first: it must not be sent again
    workload.tx(
        workload.issuer,
        market.ctx.registry.functions.issue(
            device_id,
            person.address,
            first_hour + 3600,
            first_hour + 7200,
            10,
            workload.evidence(bytes.fromhex(meter[2:]), first_hour + 3600, 10),
        ),
    )

    with market.session() as session:
        # "now" just after the fourth hour: its missing quarters are still awaited
        report = issue_certificates(
            session, market.ctx, market.locks, market.settings, now=first_hour + 4 * 3600 + 600
        )
        assert (report.recorded, report.issued, report.already_issued) == (3, 2, 1)
        rows = {r.hour_start: r for r in session.exec(select(RecIssuance)).all()}
    assert (
        rows[first_hour].volume_wh == 100 + 101 + 102 + 103 and rows[first_hour].status == "issued"
    )
    assert rows[first_hour + 3600].status == "closed"
    assert first_hour + 3 * 3600 not in rows
    registry = market.ctx.registry
    assert registry.functions.isPeriodIssued(
        device_id, first_hour + 7200, first_hour + 10800
    ).call()

    with market.session() as session:  # a duplicated run issues nothing more
        again = issue_certificates(
            session, market.ctx, market.locks, market.settings, now=first_hour + 4 * 3600 + 600
        )
        assert (again.recorded, again.issued) == (0, 0)
        # past the missing-data deadline the partial hour is issued from what was metered
        late = issue_certificates(session, market.ctx, market.locks, market.settings)
        assert (late.recorded, late.issued) == (1, 1)
        partial = session.exec(
            select(RecIssuance).where(RecIssuance.hour_start == first_hour + 3 * 3600)
        ).one()
        assert (partial.volume_wh, partial.data_missing) == (50, True)
    issued = registry.events.CertificateIssued().get_logs(from_block=0)
    hours = [(e["args"]["deviceId"], e["args"]["periodStart"]) for e in issued]
    assert len(hours) == len(set(hours)) == 4


def test_unsigned_owner_export_issues_no_certificate(market):
    """An hour the owner reports unsigned is not issued; the verified quarters alone count."""

    workload = market.devnet.workload
    market.catch_up()
    person = workload.people[0]
    meter = "0x" + default_meter_id(person.address).hex()
    first_hour = (market.ctx.now() // 3600 - 5) * 3600
    market.meter_readings({(meter, first_hour + 900 * q): 2_000 for q in range(4)}, by="owner")
    signed_quarters = {(meter, first_hour + 3600 + 900 * q): 100 for q in range(4)}
    market.meter_readings({**signed_quarters, (meter, first_hour + 3600): 100})
    market.meter_readings({(meter, first_hour + 3600 + 900): 2_000}, by="owner")  # refused
    with market.session() as session:
        report = issue_certificates(
            session, market.ctx, market.locks, market.settings, now=first_hour + 3 * 3600 + 600
        )
        rows = {r.hour_start: r for r in session.exec(select(RecIssuance)).all()}
    assert report.issued == 1
    assert first_hour not in rows  # only unverified quarters: nothing to issue (yet: missing)
    assert rows[first_hour + 3600].volume_wh == 400 and rows[first_hour + 3600].status == "issued"


def test_hours_with_storage_behind_the_device_meter_are_refused(market):
    """A wallet registered its device on chain behind a battery the API had accepted on a
    meter of its own: issuance refuses those hours, recorded before the battery or after."""
    workload = market.devnet.workload
    market.catch_up()
    person = workload.people[0]
    device_id = workload.devices[person.address]
    meter = "0x" + default_meter_id(person.address).hex()
    first_hour = (market.ctx.now() // 3600 - 5) * 3600
    market.meter_readings({(meter, first_hour + 900 * q): 100 for q in range(12)})
    with market.session() as session:
        early = record_due_hours(
            session, now=first_hour + 3 * 3600 + 600, deadline_s=86_400, gate_s=0, lookback_s=86_400
        )
        assert early.recorded == 2  # pending, before the battery
        session.add(
            DerResource(
                name="i17-trust battery",
                kind="battery",
                owner_id=session.get(Meter, meter).owner_id,
                meter_id=meter,
                grid_area="KR-SE-001",
                capacity_w=5_000,
                energy_capacity_wh=10_000,
                max_charge_w=5_000,
                max_discharge_w=5_000,
                min_soc_wh=0,
                max_soc_wh=10_000,
            )
        )
        session.commit()
        report = issue_certificates(
            session, market.ctx, market.locks, market.settings, now=first_hour + 4 * 3600 + 600
        )
        rows = session.exec(select(RecIssuance).where(RecIssuance.device_id == device_id)).all()
    assert (report.recorded, report.issued, report.refused) == (1, 0, 3)
    assert sorted((r.hour_start - first_hour, r.status) for r in rows) == [
        (0, "refused"),
        (3600, "refused"),
        (7200, "refused"),
    ]
    registry = market.ctx.registry
    assert not registry.functions.isPeriodIssued(device_id, first_hour, first_hour + 3600).call()

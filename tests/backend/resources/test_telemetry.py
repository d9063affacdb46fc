"""DER telemetry: WIA-ENE-014 `{timestamp, value, unit}` samples on a resource's topics into
the telemetry store and the latest state, directly and through the real Mosquitto broker."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from sqlmodel import Session, func, select

from backend.core.config import Settings
from backend.core.db import make_engine
from backend.meters.mqtt import Subscriber
from backend.resources import telemetry
from backend.resources.errors import TelemetryRejected
from backend.resources.models import DerResource, ResourceKind, TelemetryMetric, TelemetrySample
from backend.resources.services import decommission_resource
from backend.resources.telemetry import (
    Sample,
    record_samples,
    sample_from_message,
    samples_from_message,
    store_samples,
)
from tests.fixtures.meters import seed_meters
from tests.fixtures.mqtt import stop_when_handled
from tests.fixtures.resources import WALL, add_pv, add_resource
from tests.fixtures.services import require_service

RID = uuid.UUID(int=7)
T0 = "2026-12-01T12:00:00Z"
T0_S = 1_796_126_400


def message(metric: str, body: str, device: str = str(RID)):
    return sample_from_message(
        f"energy-cloud/KR-SE-001/battery/{device}/{metric}", body.encode(), "energy-cloud"
    )


def test_payloads_and_topics_that_are_ours():
    output = message("output", f'{{"timestamp": "{T0}", "value": 2.5, "unit": "kW"}}')
    assert (output.resource_id, output.metric, output.at, output.value, output.unit) == (
        RID,
        TelemetryMetric.OUTPUT,
        T0_S,
        2.5,
        "kW",
    )
    assert message("soc", f'{{"timestamp": "{T0}", "value": 67}}').unit == "Wh"
    assert message("status", f'{{"timestamp": "{T0}", "value": "online"}}').status == "online"
    assert message("soc", "{}", device="BAT-001") is None  # a meter's topic, not a resource's
    assert message("generation", "{}") is None
    for body, problem in [
        ('{"value": "lots"}', "numeric"),
        ('{"value": 1, "unit": "MW"}', "unit"),
        ('{"value": 1, "timestamp": "2026-12-01T12:00:00"}', "time zone"),
        ('{"value"', "invalid JSON"),
    ]:
        with pytest.raises(TelemetryRejected, match=problem):
            message("output", body)


def test_samples_update_the_latest_state_and_stay_in_the_store(metered):
    session, owner, *_ = metered
    battery, pv = add_resource(session, owner), add_pv(session, owner)

    def sample(resource, metric, body):
        return sample_from_message(
            f"energy-cloud/KR-SE-001/x/{resource.id}/{metric}", body.encode(), "energy-cloud"
        )

    stored, reasons = record_samples(
        session,
        [
            sample(battery, "soc", f'{{"timestamp": "{T0}", "value": 50, "unit": "%"}}'),
            sample(battery, "output", f'{{"timestamp": "{T0}", "value": -1.2, "unit": "kW"}}'),
            sample(battery, "output", '{"timestamp": "2026-12-01T11:59:00Z", "value": 999}'),
            sample(pv, "soc", f'{{"timestamp": "{T0}", "value": 5}}'),
            sample(battery, "soc", f'{{"timestamp": "{T0}", "value": 14, "unit": "kWh"}}'),
        ],
    )
    assert stored == 3
    assert reasons == [
        f"resource {pv.id} has no state of charge",
        "SoC 14000 Wh outside 0..13500 Wh",
    ]
    assert (battery.output_w, battery.soc_wh) == (-1_200, 6_750)  # the older 999 W did not win
    assert battery.state_at == datetime.fromtimestamp(T0_S, UTC)
    rows = session.exec(
        select(TelemetrySample.metric, TelemetrySample.value)
        .where(TelemetrySample.resource_id == battery.id)
        .order_by(TelemetrySample.at, TelemetrySample.metric)
    ).all()
    assert sorted(rows) == [("output", -1_200), ("output", 999), ("soc", 6_750)]
    decommission_resource(session, WALL, owner, battery.id)
    _, later = record_samples(session, [sample(battery, "output", '{"value": 1}')])
    assert later == [f"no active resource {battery.id}"]


@pytest.mark.mqtt
def test_devices_report_through_mosquitto(fresh_pg_url):
    require_service("Mosquitto", "mqtt://127.0.0.1:1883", "GRIDLEDGER_MQTT_HOST")
    engine = make_engine(fresh_pg_url)
    with Session(engine) as session:
        owner, *_ = seed_meters(session)
        battery_id = add_resource(session, owner).id
        session.commit()
    root = f"energy-cloud-i17-der-{uuid.uuid4().hex[:8]}"
    settings = Settings(_env_file=None, database_url=fresh_pg_url, mqtt_topic_root=root)
    client_id = f"gl-i17-der-{uuid.uuid4().hex[:8]}"
    subscriber = Subscriber(settings=settings, client_id=client_id)
    thread = threading.Thread(target=subscriber.run, daemon=True)
    thread.start()
    assert subscriber.subscribed.wait(10), "subscription not acknowledged by Mosquitto"
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{client_id}-pub")
    publisher.connect("127.0.0.1", 1883)
    publisher.loop_start()
    topic = f"{root}/KR-SE-001/battery/{battery_id}"
    infos = [
        publisher.publish(f"{topic}/soc", f'{{"timestamp": "{T0}", "value": 9000}}', qos=1),
        publisher.publish(
            f"{topic}/output", f'{{"timestamp": "{T0}", "value": 3.1, "unit": "kW"}}', qos=1
        ),
        publisher.publish(
            f"{topic}/status", f'{{"timestamp": "{T0}", "value": "ack:cmd-1"}}', qos=1
        ),
        publisher.publish(f"{topic}/output", '{"value": "broken"}', qos=1),
    ]
    stop_when_handled(subscriber, thread, infos, publisher)
    # drop the subscriber's persistent session on the broker
    cleaner = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    cleaner.connect("127.0.0.1", 1883, clean_start=True)
    cleaner.disconnect()

    assert subscriber.totals["telemetry"] == 3 and subscriber.totals["rejected"] == 1
    with Session(engine) as session:
        battery = session.get(DerResource, battery_id)
        assert (battery.soc_wh, battery.output_w) == (9_000, 3_100)
        statuses = session.exec(
            select(TelemetrySample.status).where(TelemetrySample.metric == "status")
        ).all()
        assert statuses == ["ack:cmd-1"]
    engine.dispose()


def test_a_batched_message_stores_its_samples_in_bulk_and_the_latest_state_wins(metered):
    """A gateway's array of 96 SoC samples in shuffled time order, one with an impossible SoC
    and one not an object, plus a separate older output sample: 94 rows stored in one go, the
    bad elements rejected alone, and the state is the newest sample's (not the last sent)."""
    session, owner, *_ = metered
    battery = add_resource(session, owner)
    elements: list[object] = [
        {"timestamp": datetime.fromtimestamp(T0_S - 900 * k, UTC).isoformat(), "value": 100 * k}
        for k in range(96)
    ]
    elements = elements[40:] + elements[:40]  # the newest (k = 0, 0 Wh) sent in the middle
    elements[3] = {"timestamp": T0, "value": 99_999}  # above the 13,500 Wh capacity
    elements[5] = 42
    found = samples_from_message(
        f"energy-cloud/KR-SE-001/battery/{battery.id}/soc",
        json.dumps(elements).encode(),
        "energy-cloud",
    )
    assert isinstance(found, list) and len(found) == 96
    assert isinstance(found[5], TelemetryRejected)
    samples = [s for s in found if not isinstance(s, TelemetryRejected)]
    older_output = message("output", '{"timestamp": "2026-12-01T11:00:00Z", "value": 7}')
    samples.append(Sample(battery.id, older_output.metric, older_output.at, 7.0, "W"))
    stored, duplicate, rejected = store_samples(session, samples)
    assert (stored, duplicate) == (95, 0)
    assert list(rejected.values()) == ["SoC 99999 Wh outside 0..13500 Wh"]
    session.commit()
    assert (battery.soc_wh, battery.output_w) == (0, 7)
    assert battery.state_at == datetime.fromtimestamp(T0_S, UTC)
    count, total = session.exec(
        select(func.count(), func.sum(TelemetrySample.value)).where(
            TelemetrySample.resource_id == battery.id, TelemetrySample.metric == "soc"
        )
    ).one()
    expected = [100 * k for k in range(96)]
    assert (
        count == 94 and total == sum(expected) - expected[(3 + 40) % 96] - expected[(5 + 40) % 96]
    )


def soc_batch(resource_id: uuid.UUID, hours: range, wh_per_hour: int = 100) -> list[Sample]:
    """SoC samples on the hour before T0 (hour 0 is T0, the newest)."""
    return [
        Sample(resource_id, TelemetryMetric.SOC, T0_S - 3600 * h, float(wh_per_hour * h), "Wh")
        for h in hours
    ]


def stored_soc(session: Session, resource_id: uuid.UUID) -> tuple[int, int]:
    count, total = session.exec(
        select(func.count(), func.coalesce(func.sum(TelemetrySample.value), 0)).where(
            TelemetrySample.resource_id == resource_id, TelemetrySample.metric == "soc"
        )
    ).one()
    return count, total


@pytest.mark.parametrize("world", ["metered", "sqlite_metered"])
def test_a_batch_stored_twice_adds_no_row_and_leaves_the_state(world, request):
    """The same 24 samples again (a redelivery) store nothing and count 24 duplicates; a
    redelivered copy of the newest sample carrying another value does not move the state."""
    session, owner, *_ = request.getfixturevalue(world)
    battery = add_resource(session, owner)
    batch = soc_batch(battery.id, range(24))
    assert store_samples(session, batch) == (24, 0, {})
    session.commit()
    assert stored_soc(session, battery.id) == (24, sum(100 * h for h in range(24)))
    assert (battery.soc_wh, battery.state_at) == (0, datetime.fromtimestamp(T0_S, UTC))

    again = [*batch[::-1], Sample(battery.id, TelemetryMetric.SOC, T0_S, 5_000.0, "Wh")]
    assert store_samples(session, again) == (0, 25, {})
    session.commit()
    assert stored_soc(session, battery.id) == (24, sum(100 * h for h in range(24)))
    assert battery.soc_wh == 0  # the stored sample at T0 stays the state


@pytest.mark.parametrize("world", ["metered", "sqlite_metered"])
def test_an_overlapping_batch_stores_only_its_new_samples(world, request):
    """Hours 12..35 after hours 0..23: the 12 older hours go in, the 12 stored are duplicates
    (one of them twice in the batch), nothing is rejected; the state stays the newest (T0)."""
    session, owner, *_ = request.getfixturevalue(world)
    battery = add_resource(session, owner)
    store_samples(session, soc_batch(battery.id, range(24)))
    session.commit()
    overlapping = soc_batch(battery.id, range(12, 36), wh_per_hour=10)
    overlapping.append(overlapping[0])  # hour 12 twice
    stored, duplicate, rejected = store_samples(session, overlapping)
    session.commit()
    assert (stored, duplicate, rejected) == (12, 13, {})
    count, total = stored_soc(session, battery.id)
    assert count == 36
    assert total == sum(100 * h for h in range(24)) + sum(10 * h for h in range(24, 36))
    assert (battery.soc_wh, battery.state_at) == (0, datetime.fromtimestamp(T0_S, UTC))


def test_values_converted_in_columns_are_the_ones_sample_by_sample():
    """`store_samples` converts values per resource, metric and unit in numpy: every value and
    every reason is the one `integer_value` gives sample by sample (halves to even, kW and kWh,
    % of capacity, SoC out of range, SoC of a resource without storage, beyond 2^53), and
    samples of a resource that is not active are refused."""
    battery = DerResource(
        id=uuid.uuid4(), kind=ResourceKind.BATTERY, energy_capacity_wh=13_500, status="active"
    )
    pv = DerResource(id=uuid.uuid4(), kind=ResourceKind.PV, status="active")
    resources = {battery.id: battery, pv.id: pv}
    output, soc = TelemetryMetric.OUTPUT, TelemetryMetric.SOC
    cases = [
        *[(pv.id, output, v, "W") for v in (0.5, 1.5, 2.5, -2.5, 1e17, 123.456)],
        *[(pv.id, output, v, "kW") for v in (0.0005, 1.2345, -3.0, 9.1e15)],
        *[(battery.id, soc, v, "Wh") for v in (0.0, 13_500.0, 13_500.5, 13_501.0, -1.0)],
        *[(battery.id, soc, v, "kWh") for v in (13.5, 13.6, 0.0025)],
        *[(battery.id, soc, v, "%") for v in (0.0, 50.0, 33.3333, 100.0, 100.01)],
        (pv.id, soc, 10.0, "Wh"),
        (uuid.uuid4(), output, 1.0, "W"),
    ]
    samples = [
        Sample(rid, metric, T0_S + k, v, unit) for k, (rid, metric, v, unit) in enumerate(cases)
    ]
    values, rejected = telemetry._integer_values(samples, resources)
    for index, sample in enumerate(samples):
        resource = resources.get(sample.resource_id)
        if resource is None:
            assert rejected[index] == f"no active resource {sample.resource_id}"
            continue
        try:
            expected = telemetry.integer_value(sample, resource)
        except TelemetryRejected as exc:
            assert (index, rejected.get(index)) == (index, exc.detail)
            continue
        assert (index, values[index]) == (index, expected)
        assert index not in rejected
    assert len(rejected) == 6  # 13,500.5 rounds to 13,500 (even): stored

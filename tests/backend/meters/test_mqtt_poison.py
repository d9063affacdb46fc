"""Poison messages on the real Mosquitto: the subscriber records what it cannot process as a
dead letter, acknowledges it (never redelivered) and keeps storing good readings; a database
outage is retried, not dead-lettered."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, func, select

from backend.core.config import Settings
from backend.core.db import make_engine
from backend.deadletters.models import DeadLetter
from backend.meters.models import MeterReading
from backend.meters.mqtt import StoreUnavailable, Subscriber
from backend.meters.validation import iso
from tests.fixtures.garbage import fixed, random_readings
from tests.fixtures.meters import NOW, seed_meters
from tests.fixtures.mqtt import (
    mosquitto_pub,
    run_subscriber,
    unique,
    wait_until,
)

METER = "meter:solar-1"


def topic(root: str, metric: str = "reading", meter: str = METER) -> str:
    return f"{root}/seoul/solar-panel/{meter}/{metric}"


def good(k: int) -> bytes:
    """A valid generation reading of the k-th interval before NOW (k Wh)."""
    return f'{{"timestamp": "{iso(NOW - 900 * k)}", "exportWh": {k}}}'.encode()


def units(payload: bytes) -> int:
    """What a message counts for in the subscriber's totals: each element of a batched message
    (a non-empty JSON array) is a reading of its own, anything else one message."""
    try:
        body = json.loads(payload)
    except ValueError:
        return 1
    return len(body) if isinstance(body, list) and body else 1


def counts(engine) -> tuple[int, int, int]:
    """(stored readings, dead letters, deliveries of dead letters)."""
    with Session(engine) as session:
        readings = session.exec(select(func.count()).select_from(MeterReading)).one()
        letters, received = session.exec(
            select(func.count(), func.coalesce(func.sum(DeadLetter.count), 0))
        ).one()
    return readings, letters, received


@pytest.mark.mqtt
def test_a_list_unit_on_a_persistent_session_is_dead_lettered_once(world):
    """The issue's reproduction: a reading whose `unit` is a list, QoS 1, waiting in the
    subscriber's persistent session. Before: TypeError, the subscriber died, and every restart
    got the message again. Now: one dead letter, acknowledged; restarts see nothing again."""
    engine, settings, root, client_ids, publisher = world
    client_id = unique("gl-ingest")
    client_ids.append(client_id)
    run_subscriber(settings, client_id).stop()  # the session exists (with its subscription)

    poison = f'{{"timestamp": "{iso(NOW - 900)}", "value": 5, "unit": ["Wh"]}}'.encode()
    publisher.publish(topic(root), poison)  # queued for the offline session
    publisher.publish(topic(root), good(2))

    first = run_subscriber(settings, client_id)
    assert wait_until(lambda: counts(engine) == (1, 1, 1)), counts(engine)
    assert first.thread.is_alive()
    first.stop()
    with Session(engine) as session:
        letter = session.exec(select(DeadLetter)).one()
    assert (letter.topic, letter.payload, letter.source) == (topic(root), poison, "mqtt")
    assert "unit must be Wh or kWh, got list" in letter.reason

    for _ in range(2):  # restarts: the broker has nothing left to redeliver
        again = run_subscriber(settings, client_id)
        publisher.publish(topic(root), good(3))  # and good readings keep flowing
        assert wait_until(lambda s=again.subscriber: s.totals["duplicate"] + s.totals["accepted"])
        again.stop()
        assert again.subscriber.totals["rejected"] == 0
    assert counts(engine) == (2, 1, 1)


@pytest.mark.mqtt
def test_fuzzed_garbage_never_stops_the_subscriber(world, tmp_path):
    """Generated garbage (wrong types, huge numbers, NaN/Infinity, nested objects, invalid
    UTF-8, empty and megabyte payloads) through paho and `mosquitto_pub`, between good
    readings: every good reading is stored, every bad message is one dead-letter delivery,
    and a restart of the persistent session redelivers none of them."""
    engine, settings, root, client_ids, publisher = world
    client_id = unique("gl-ingest")
    client_ids.append(client_id)
    running = run_subscriber(settings, client_id)
    ts = iso(NOW - 900 * 500)
    garbage = fixed(ts) + random_readings(seed=15, count=120, ts=ts)
    sent_good = 0
    for n, payload in enumerate(garbage):
        metric = ("reading", "generation", "consumption")[n % 3]
        if n % 4 == 0:
            mosquitto_pub(topic(root, metric), payload, tmp_path)
        else:
            publisher.publish(topic(root, metric), payload)
        if n % 10 == 0:
            sent_good += 1
            publisher.publish(topic(root), good(sent_good))
    sent_good += 1
    publisher.publish(topic(root), good(sent_good))

    totals = running.subscriber.totals
    expected = sum(map(units, garbage)) + sent_good
    assert expected > len(garbage) + sent_good  # `[1, 2, 3]`: three rejected elements
    assert wait_until(lambda: sum(totals.values()) >= expected, timeout_s=60), totals
    assert running.thread.is_alive(), "the subscriber died"
    assert sum(totals.values()) == expected  # each message accounted for once
    readings, letters, received = counts(engine)
    # A generated reading may be valid after all (its random field happened to be fine): it
    # is stored. Every other message is a dead-letter delivery; the hand-picked ones all are.
    assert totals["rejected"] == received >= len(fixed(ts))
    with Session(engine) as session:
        exported = session.exec(
            select(func.sum(MeterReading.export_wh)).where(
                MeterReading.interval_start != NOW - 900 * 500
            )
        ).one()
        largest = session.exec(select(func.max(DeadLetter.payload_size))).one()
        stored = session.exec(select(func.max(func.length(DeadLetter.payload)))).one()
    assert exported == sum(range(1, sent_good + 1))  # the good readings, exactly
    assert readings in (sent_good, sent_good + 1)
    assert largest >= 2**20 and stored == settings.dead_letter_max_bytes  # a capped copy
    running.stop()

    again = run_subscriber(settings, client_id)
    publisher.publish(topic(root), good(sent_good + 1))
    assert wait_until(lambda: counts(engine)[0] == readings + 1)
    again.stop()
    assert again.subscriber.totals["rejected"] == 0
    assert counts(engine)[1:] == (letters, received)


class Fragile(Subscriber):
    """A subscriber with a processing bug triggered by one message (what `unit: [...]` did
    before validation checked types): it must cost that message only."""

    def process(self, batch):
        if any(b"boom" in payload for *_, payload in batch):
            raise TypeError("unhashable type: 'list'")
        return super().process(batch)


def test_a_message_that_raises_is_dead_lettered_alone(fresh_pg_url):
    """One batch of three messages, the middle one raising: the other two are stored, the
    middle one is a dead letter with the exception as its reason."""
    engine = make_engine(fresh_pg_url)
    with Session(engine) as session:
        seed_meters(session)
        session.commit()
    settings = Settings(_env_file=None, database_url=fresh_pg_url)
    subscriber = Fragile(settings=settings, client_id=unique("gl-ingest"))
    subscriber.now = lambda: NOW
    root = settings.mqtt_topic_root
    subscriber.pending = [
        (1, 0, topic(root), good(1)),
        (2, 0, topic(root), b'{"boom": 1}'),
        (3, 0, topic(root), good(2)),
    ]
    subscriber.flush()
    assert subscriber.pending == []
    assert counts(engine) == (2, 1, 1)
    with Session(engine) as session:
        reason = session.exec(select(DeadLetter.reason)).one()
    assert reason == "processing failed: TypeError: unhashable type: 'list'"
    subscriber.engine.dispose()
    engine.dispose()


def test_a_database_outage_is_retried_not_dead_lettered(fresh_pg_url):
    """Nothing listens on the database port: the batch stays pending (unacknowledged) and the
    back-off grows; once the database answers, the same messages are stored."""
    engine = make_engine(fresh_pg_url)
    with Session(engine) as session:
        seed_meters(session)
        session.commit()
    down = Settings(
        _env_file=None,
        database_url="postgresql+psycopg://postgres@127.0.0.1:1/test",
        mqtt_retry_max_s=0.4,
    )
    subscriber = Subscriber(settings=down, client_id=unique("gl-ingest"), flush_interval_s=0.1)
    subscriber.now = lambda: NOW
    message = (1, 1, topic("energy-cloud"), good(1))
    subscriber.pending.append(message)
    backoffs = []
    for _ in range(3):
        with pytest.raises(StoreUnavailable, match="OperationalError"):
            subscriber.flush()
        subscriber.outages += 1
        backoffs.append(subscriber.backoff_s())
    assert subscriber.pending == [message]
    assert backoffs == [0.2, 0.4, 0.4]  # doubling, capped by mqtt_retry_max_s

    subscriber.engine.dispose()
    subscriber.engine = engine  # the database is back
    result = subscriber.flush()
    assert result is not None and result.accepted == 1
    assert subscriber.pending == [] and subscriber.outages == 0
    assert counts(engine) == (1, 0, 0)
    engine.dispose()


def test_plain_messages_name_the_rejected_element_and_mixed_batches_go_the_general_way(
    fresh_pg_url,
):
    """Plain messages take the typed way (msgspec, columns): an element of a batched message
    that validation refuses (its interval has not ended) is a dead letter of its own, named by
    its position, and the rest are stored. A batch mixing a reading that only the general way
    reads (intervalSeconds 900.0) with a plain one of the same interval goes the general way
    whole, as before: one ingest call, one reading stored and the other its correction."""
    engine = make_engine(fresh_pg_url)
    with Session(engine) as session:
        seed_meters(session)
        session.commit()
    settings = Settings(_env_file=None, database_url=fresh_pg_url)
    subscriber = Subscriber(settings=settings, client_id=unique("i16mqtt-ingest"))
    subscriber.now = lambda: NOW
    root = settings.mqtt_topic_root
    future = {"timestamp": iso(NOW + 900), "exportWh": 1}
    batched = [json.loads(good(3)), future, json.loads(good(4))]
    subscriber.pending = [
        (1, 0, topic(root), good(1)),
        (2, 0, topic(root), json.dumps(batched).encode()),
    ]
    subscriber.flush()
    assert counts(engine) == (3, 1, 1)
    with Session(engine) as session:
        letter = session.exec(select(DeadLetter)).one()
    assert letter.reason.startswith("element 1 of 3: ")
    assert json.loads(letter.payload) == future

    general = {"timestamp": iso(NOW - 900 * 5), "exportWh": 5, "intervalSeconds": 900.0}
    subscriber.pending = [
        (3, 0, topic(root), json.dumps(general).encode()),
        (4, 0, topic(root), f'{{"timestamp": "{iso(NOW - 900 * 5)}", "exportWh": 7}}'.encode()),
    ]
    result = subscriber.flush()
    assert result is not None
    assert (result.received, result.accepted, result.corrected) == (2, 1, 1)  # one call
    assert counts(engine) == (4, 1, 1)
    subscriber.engine.dispose()
    engine.dispose()

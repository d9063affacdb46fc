"""EiOpt against openleadr's own VEN over TLS: an opt-out schedule decides the deliveries of
events overlapping its windows (and only those), cancelling it ends that, an opt naming an
event is that event's answer, unknown opts and events are refused with 452."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from openleadr import objects
from sqlmodel import Session, select

from backend.openadr import services
from backend.openadr.models import EventDelivery, OptSchedule, OptWindow, SignalName
from tests.fixtures.openadr import client, run_with_vtn, until

logging.getLogger("openleadr").setLevel(logging.CRITICAL)


def delivery_of(engine, event_id) -> EventDelivery:
    with Session(engine) as session:
        return session.exec(select(EventDelivery).where(EventDelivery.event_id == event_id)).one()


def publish(engine, start: datetime, duration_s: int = 900):
    with Session(engine) as session:
        event = services.publish_event(
            session,
            signal=SignalName.SIMPLE,
            intervals=[services.Interval(start, duration_s, 1)],
            ven_ids=["ven-house"],
        )
        session.commit()
        return event.id


def test_an_opt_out_schedule_decides_overlapping_events_until_cancelled(world):
    settings, engine, certs, _ca, _meter = world
    window_start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)

    async def scenario(vtn):
        ven = client(settings, "house", certs["house"], settings.tls_ca_file, "ven-house")
        answers: list[str] = []

        async def on_event(event):
            answers.append(event["event_descriptor"]["event_id"])
            return "optIn"

        ven.add_handler("on_event", on_event)
        await ven.create_party_registration(ven_id="ven-house")
        opt_id = await ven.create_opt(
            opt_type="optOut",
            opt_reason="economic",
            targets=[objects.Target(ven_id="ven-house")],
            vavailability=objects.Vavailability(
                components=[
                    objects.VavailabilityComponent(
                        dtstart=window_start, duration=timedelta(hours=1)
                    ),
                    objects.VavailabilityComponent(
                        dtstart=window_start + timedelta(hours=3), duration=timedelta(hours=1)
                    ),
                ]
            ),
        )
        inside = publish(engine, window_start + timedelta(minutes=30))
        outside = publish(engine, window_start + timedelta(hours=1, minutes=15))
        await until(lambda: all(delivery_of(engine, e).queued_at for e in (inside, outside)))
        decided = (delivery_of(engine, inside), delivery_of(engine, outside))
        cancelled = await ven.cancel_opt(opt_id)
        after = publish(engine, window_start + timedelta(minutes=45))
        await until(lambda: delivery_of(engine, after).queued_at is not None)
        await ven.client_session.close()
        return opt_id, decided, cancelled, delivery_of(engine, after)

    opt_id, (inside, outside), cancelled, after = run_with_vtn(settings, engine, scenario)
    assert opt_id
    assert (inside.opt_type, inside.opt_source, inside.opt_id) == ("optOut", "schedule", opt_id)
    assert (outside.opt_type, outside.opt_source) == (None, None)
    assert cancelled is True
    assert (after.opt_type, after.opt_source) == (None, None)
    with Session(engine) as session:
        schedule = session.get(OptSchedule, opt_id)
        assert schedule is not None and schedule.cancelled_at is not None
        windows = session.exec(select(OptWindow).where(OptWindow.opt_id == opt_id)).all()
    assert sorted(w.end - w.start for w in windows) == [3600, 3600]


def test_an_opt_naming_an_event_answers_it_and_unknown_ids_get_452(world):
    settings, engine, certs, _ca, _meter = world
    start = datetime.now(UTC) + timedelta(hours=1)

    async def scenario(vtn):
        ven = client(settings, "house", certs["house"], settings.tls_ca_file, "ven-house")
        await ven.create_party_registration(ven_id="ven-house")
        event_id = publish(engine, start)
        await until(lambda: delivery_of(engine, event_id).queued_at is not None)
        delivery_id = delivery_of(engine, event_id).id
        target = [objects.Target(ven_id="ven-house")]
        await ven.create_opt(
            opt_type="optOut",
            opt_reason="emergency",
            targets=target,
            event_id=delivery_id,
            modification_number=0,
        )
        # raw answers for the refusals: openleadr's VEN only reports whether an optID came back
        unknown_event = ven._create_message(
            "oadrCreateOpt",
            opt_id="o-x",
            opt_type="optOut",
            opt_reason="emergency",
            ven_id="ven-house",
            created_date_time=datetime.now(UTC),
            request_id="r-1",
            event_id="no-such-event",
            modification_number=0,
            targets=target,
        )
        unknown_cancel = ven._create_message("oadrCancelOpt", opt_id="o-none", ven_id="ven-house")
        answers = [
            await ven._perform_request("EiOpt", unknown_event),
            await ven._perform_request("EiOpt", unknown_cancel),
        ]
        await ven.client_session.close()
        return event_id, answers

    event_id, answers = run_with_vtn(settings, engine, scenario)
    delivery = delivery_of(engine, event_id)
    assert (delivery.opt_type, delivery.opt_source) == ("optOut", "event")
    (created_type, created), (cancel_type, cancel) = answers
    assert created_type == "oadrCreatedOpt" and created["response"]["response_code"] == 452
    assert cancel_type == "oadrCanceledOpt" and cancel["response"]["response_code"] == 452

"""Opt schedules on their own: which schedule decides a delivery (overlap, market context,
the latest wins, cancelled ones do not count, the VEN's own answer stays), and their
validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backend.openadr import opts, services
from backend.openadr.errors import OptInvalid, OptNotFound
from backend.openadr.models import SignalName

START = datetime(2026, 12, 1, 17, tzinfo=UTC)
HOUR = timedelta(hours=1)


def delivery_for(session, start: datetime, market_context: str = "oadr://gridledger/dr"):
    services.publish_event(
        session,
        signal=SignalName.SIMPLE,
        intervals=[services.Interval(start, 1800, 1)],
        ven_ids=["ven-house"],
        market_context=market_context,
    )
    [(delivery, event)] = services.pending_deliveries(session)
    services.mark_queued(session, delivery.id)
    return delivery, event


def schedule(session, opt_id: str, opt_type: str, start: datetime, **kw):
    return opts.create_schedule(
        session,
        ven_id="ven-house",
        opt_id=opt_id,
        opt_type=opt_type,
        opt_reason="economic",
        windows=[opts.Window(start, 3600)],
        **kw,
    )


def test_the_latest_live_overlapping_schedule_decides(house):
    session, _owner, _solar = house
    schedule(session, "out", "optOut", START)
    schedule(session, "in-later", "optIn", START + timedelta(minutes=30))
    schedule(session, "other-market", "optOut", START, market_context="oadr://elsewhere")
    delivery, event = delivery_for(session, START + timedelta(minutes=40))
    assert opts.apply_schedule(session, delivery=delivery, event=event) == "optIn"
    assert (delivery.opt_id, delivery.opt_source) == ("in-later", "schedule")

    opts.cancel_schedule(session, ven_id="ven-house", opt_id="in-later")
    later, later_event = delivery_for(session, START + timedelta(minutes=10))
    assert opts.apply_schedule(session, delivery=later, event=later_event) == "optOut"
    assert later.opt_id == "out"

    # touching only at the edge is no overlap: the window is [start, start + 1 h)
    edge, edge_event = delivery_for(session, START + HOUR + timedelta(minutes=30))
    assert opts.apply_schedule(session, delivery=edge, event=edge_event) is None


def test_the_vens_own_answer_is_not_overridden(house):
    session, _owner, _solar = house
    schedule(session, "out", "optOut", START)
    delivery, event = delivery_for(session, START)
    services.record_opt(session, ven_id="ven-house", delivery_id=delivery.id, opt_type="optIn")
    assert opts.apply_schedule(session, delivery=delivery, event=event) is None
    assert (delivery.opt_type, delivery.opt_source) == ("optIn", "event")


def test_schedules_are_validated_replaced_and_cancelled_once(house):
    session, _owner, _solar = house
    with pytest.raises(OptInvalid, match="optType"):
        schedule(session, "x", "maybe", START)
    with pytest.raises(OptInvalid, match="windows"):
        opts.create_schedule(
            session, ven_id="ven-house", opt_id="x", opt_type="optOut", opt_reason="r", windows=[]
        )
    schedule(session, "same", "optOut", START)
    replaced = schedule(session, "same", "optIn", START + 3 * HOUR)
    assert replaced.opt_type == "optIn"
    delivery, event = delivery_for(session, START)
    assert opts.apply_schedule(session, delivery=delivery, event=event) is None  # old window gone
    opts.cancel_schedule(session, ven_id="ven-house", opt_id="same")
    with pytest.raises(OptNotFound):
        opts.cancel_schedule(session, ven_id="ven-house", opt_id="same")
    with pytest.raises(OptNotFound):
        opts.cancel_schedule(session, ven_id="ven-other", opt_id="nothing")

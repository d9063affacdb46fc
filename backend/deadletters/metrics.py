"""Dead-letter gauges for `/metrics`, read from the database at scrape time (the subscriber
that records them is another process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from sqlmodel import Session

from backend.deadletters.services import stats


def dead_letter_metrics(session: Session) -> bytes:
    """The exposition text of `gridledger_dead_letters` (distinct messages) and
    `gridledger_dead_letter_deliveries` (deliveries, repeats included)."""
    figures = stats(session)
    registry = CollectorRegistry()
    Gauge(
        "gridledger_dead_letters",
        "Distinct messages that could not be processed (GET /v1/admin/dead-letters)",
        registry=registry,
    ).set(figures.messages)
    Gauge(
        "gridledger_dead_letter_deliveries",
        "Deliveries of dead-lettered messages, repeats included",
        registry=registry,
    ).set(figures.received)
    return generate_latest(registry)

"""The order book's path without FastAPI (backend/api/fast_book.py): which query strings it
answers itself. The answers themselves, against the route's, are in
tests/backend/core/test_async_db.py (PostgreSQL); shared reads in test_shared_reads.py."""

from __future__ import annotations

import pytest

from backend.api.fast_book import book_query


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"market_id=energy-1800000", ("energy-1800000", 50)),
        (b"market_id=rec-7&depth=200", ("rec-7", 200)),
        (b"depth=1&market_id=energy-900", ("energy-900", 1)),
        (b"market_id=energy%2D900", ("energy-900", 50)),  # percent-encoded, as the route decodes
    ],
)
def test_well_formed_queries_are_answered_here(query, expected):
    assert book_query(query) == expected


@pytest.mark.parametrize(
    "query",
    [
        b"",  # market_id missing: the route's 422
        b"market_id=gas-900",
        b"market_id=energy-" + b"9" * 19,
        b"market_id=energy-900&depth=0",
        b"market_id=energy-900&depth=201",
        b"market_id=energy-900&depth=-1",
        b"market_id=energy-900&depth=1e2",
        b"market_id=energy-900&market_id=energy-1800",  # repeated: the route decides
        b"market_id=energy-900&depth=5&depth=6",
        b"market_id=energy-900&other=1",  # anything else: the route
        b"market_id=energy-900&",
    ],
)
def test_anything_else_goes_to_the_route(query):
    assert book_query(query) is None

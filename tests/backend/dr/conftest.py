"""DR settlement tests run on the devnet world of tests/fixtures/settlement.py."""

from tests.fixtures.settlement import any_market, market

__all__ = ["any_market", "market"]  # fixtures pytest finds here by name

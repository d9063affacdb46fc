"""VPP payout tests run on the devnet world of tests/fixtures/settlement.py."""

from tests.fixtures.settlement import market

__all__ = ["market"]  # fixtures pytest finds here by name

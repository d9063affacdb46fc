"""Pro-rata shares of a settled VPP trade's money, in integers that sum exactly to the whole.

Rule (largest remainder, Hamilton's method): member i with weight w_i (its meter's verified
export over the trade's period, Wh) of W = Σ w gets floor(amount·w_i / W); the R units left
over (R < number of members) go one each to the R members with the largest remainders
(amount·w_i mod W), ties to the lexicographically smaller meter id. So Σ shares = amount to
the base unit, every share is within one unit of its exact value, and a member with zero
weight gets nothing. With no weight at all the whole amount stays with `fallback` (the
aggregator, on the VPP's meter): a penalty on a VPP nobody delivered for is the aggregator's.
"""

from __future__ import annotations


def largest_remainder(amount: int, weights: dict[str, int], fallback: str) -> dict[str, int]:
    """Split `amount` (≥ 0) pro rata to `weights` (≥ 0); see the module docstring."""
    if amount < 0 or any(w < 0 for w in weights.values()):
        raise ValueError("amounts and weights are non-negative")
    positive = {k: w for k, w in weights.items() if w > 0}
    total = sum(positive.values())
    if total == 0:
        return {fallback: amount}
    shares = {k: amount * w // total for k, w in positive.items()}
    left = amount - sum(shares.values())
    by_remainder = sorted(positive, key=lambda k: (-(amount * positive[k] % total), k))
    for key in by_remainder[:left]:
        shares[key] += 1
    return shares

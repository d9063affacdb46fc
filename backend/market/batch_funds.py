"""What the batched writer checks a batch's orders against: each order's mirrored chain state
and what its maker's open orders already reserve, read in the batch's transaction under the
makers' locks (backend/market/order_writer.py), for every kind of wallet order:

- an energy offer: the free market balance against the collateral of the maker's open energy
  offers (by the matcher's `matched_wh`, which runs ahead of the mirror) under the mirrored
  settlement terms;
- a bid: GridUSD balance and allowance to the market against the payment of the maker's open
  bids (by the mirror's fills: the mirrored balance and allowance paid for exactly those);
- a REC offer: the Wh held of the certificate and the market's operator approval against the
  Wh the maker's open offers of that certificate sell (by the mirror's fills).

What is reserved is read before the mirrored funds (statements run in that order: a fill
indexed in between lowers the funds, not the sum, which refuses more, never accepts more),
and is kept per claim (`Claim`) with the highest seq counted (`Reserved`): the next batch
reads only the maker's orders after it. Fills and cancels only lower the true figure and every
new order of a maker is inserted under its lock with a higher seq, so the kept figure plus
the orders after it is never below the truth; a refusal on it is dropped and re-checked by
the sync intake, with the chain.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

from backend.market import orders as eip712
from backend.market.mirror_state import Mirrored, trusted, trusted_bid, trusted_rec_offer
from backend.market.models import OrderStatus

MAX_CACHED_CLAIMS = 10_000

# A maker's claim on its funds: (kind, maker, asset): ("energy", maker, 0), ("bid", maker, 0),
# ("rec", maker, certificate id).
Claim = tuple[str, str, int]
ENERGY, BID, REC = "energy", "bid", "rec"


def claim_of(order: eip712.Order) -> Claim:
    maker = order.maker.lower()
    if order.side == eip712.BUY:
        return BID, maker, 0
    if order.product == eip712.REC:
        return REC, maker, order.assetId
    return ENERGY, maker, 0


def reserves(order: eip712.Order, funds: list[Any]) -> int:
    """What `order` adds to its claim once accepted (`funds` as `intake.funds_reads`)."""
    if order.side == eip712.BUY:
        return eip712.payment(order.quantityWh, order.price)
    if order.product == eip712.REC:
        return order.quantityWh
    return eip712.collateral(order.quantityWh, order.price, funds[1], funds[2])


# mirror_state's values for many makers: (maker, cursor, nonce, free, tolerance, penalty)
_ENERGY_MIRROR = """
SELECT m.maker,
       (SELECT max(block_number) FROM indexer_cursors WHERE chain_id = %(chain_id)s),
       n.nonce, b.withdrawable,
       (SELECT value FROM market_parameters WHERE name = 'tolerance_bps'),
       (SELECT value FROM market_parameters WHERE name = 'penalty_bps')
FROM unnest(%(makers)s::text[]) AS m(maker)
LEFT JOIN maker_nonces AS n ON n.maker = m.maker
LEFT JOIN market_balances AS b ON b.account = m.maker
"""
# (maker, cursor, nonce, token balance, allowance to the market, unlimited)
_BID_MIRROR = """
SELECT m.maker,
       (SELECT max(block_number) FROM indexer_cursors WHERE chain_id = %(chain_id)s),
       n.nonce, b.balance, a.allowance, a.unlimited
FROM unnest(%(makers)s::text[]) AS m(maker)
LEFT JOIN maker_nonces AS n ON n.maker = m.maker
LEFT JOIN token_balances AS b ON b.account = m.maker
LEFT JOIN token_allowances AS a ON a.owner = m.maker AND a.spender = %(market)s
"""
# (maker, certificate, cursor, nonce, Wh held, the market approved as operator)
_REC_MIRROR = """
SELECT m.maker, m.asset,
       (SELECT max(block_number) FROM indexer_cursors WHERE chain_id = %(chain_id)s),
       n.nonce, h.balance_wh, o.approved
FROM unnest(%(makers)s::text[], %(assets)s::bigint[]) AS m(maker, asset)
LEFT JOIN maker_nonces AS n ON n.maker = m.maker
LEFT JOIN holdings AS h ON h.account = m.maker AND h.certificate_id = m.asset
LEFT JOIN operator_approvals AS o ON o.account = m.maker AND o.operator = %(market)s
"""
# intake.reserved_collateral per maker, in SQL (numeric: no overflow; div() is floor here, every
# value is non-negative), over the maker's orders after seq `after` (0: all of them): (maker,
# collateral of the open energy offers among them, their highest seq, the terms applied)
RESERVED_COLLATERAL = """
SELECT m.maker,
       coalesce(sum(div(div((o.r - div(o.r * t.tol, 10000)) * o.price, 1000) * t.pen, 10000))
                FILTER (WHERE o.status = %(open)s AND o.side = %(sell)s
                        AND o.product = %(energy)s), 0),
       coalesce(max(o.seq), m.after), t.tol, t.pen
FROM unnest(%(makers)s::text[], %(after)s::bigint[]) AS m(maker, after)
CROSS JOIN (SELECT (SELECT value FROM market_parameters WHERE name = 'tolerance_bps') AS tol,
                   (SELECT value FROM market_parameters WHERE name = 'penalty_bps') AS pen) AS t
LEFT JOIN LATERAL (
    SELECT seq, status, side, product, price,
           greatest(quantity_wh - matched_wh, 0)::numeric AS r
    FROM signed_orders WHERE maker = m.maker AND seq > m.after
) AS o ON true
GROUP BY m.maker, m.after, t.tol, t.pen
"""
# intake.reserved with mirrored fills per (maker, asset), after seq `after`: (maker, asset,
# payment of the open bids when `bids`, else the Wh of the open REC offers of certificate
# `asset`, the highest seq). Payment rounds up per order, like eip712.payment.
RESERVED_MIRRORED = """
SELECT m.maker, m.asset,
       coalesce(sum(CASE WHEN %(bids)s THEN div(o.r * o.price + 999, 1000) ELSE o.r END)
                FILTER (WHERE o.status = %(open)s AND o.side = %(side)s
                        AND (%(bids)s OR (o.product = %(rec)s AND o.asset_id = m.asset))), 0),
       coalesce(max(o.seq), m.after)
FROM unnest(%(makers)s::text[], %(assets)s::bigint[], %(after)s::bigint[])
     AS m(maker, asset, after)
LEFT JOIN LATERAL (
    SELECT s.seq, s.status, s.side, s.product, s.asset_id, s.price,
           greatest(s.quantity_wh - coalesce(f.filled_wh, 0), 0)::numeric AS r
    FROM signed_orders AS s LEFT JOIN market_orders AS f ON f.order_hash = s.order_hash
    WHERE s.maker = m.maker AND s.seq > m.after
) AS o ON true
GROUP BY m.maker, m.asset, m.after
"""


@dataclass(frozen=True)
class Reserved:
    """A claim's reserved funds as last counted: the open orders up to seq `upto`, under
    `terms` (energy offers' tolerance and penalty bps; () for the other kinds)."""

    amount: int
    upto: int
    terms: tuple[int, ...]


@dataclass
class BatchFunds:
    """A batch's mirrored values per claim (NULL where the mirror has no row) and what each
    claim's open orders reserve (`committed`: grows with each order accepted in the batch)."""

    values: dict[Claim, tuple[Any, ...]]
    committed: dict[Claim, int]

    def state(self, claim: Claim, *, head: tuple[int, int], max_lag_blocks: int) -> Mirrored | None:
        """`mirror_state`'s answer for the claim's order: None, ask the chain."""
        values = self.values.get(claim)
        if values is None or claim not in self.committed:
            return None
        if claim[0] == BID:
            return trusted_bid(values, head=head, max_lag_blocks=max_lag_blocks)
        if claim[0] == REC:
            return trusted_rec_offer(values, head=head, max_lag_blocks=max_lag_blocks)
        return trusted(values, head=head, max_lag_blocks=max_lag_blocks)


@dataclass
class _Reads:
    """The pipelined statements of one batch, fetched by `Ledger.fetch`."""

    reserved: dict[str, psycopg.Cursor[Any]]
    mirror: dict[str, psycopg.Cursor[Any]]


class Ledger:
    """One writer's reserved funds per claim, across its batches (see the module's docstring)."""

    def __init__(self, *, chain_id: int) -> None:
        self.chain_id = chain_id
        self.reserved: dict[Claim, Reserved] = {}

    def forget(self, claim: Claim) -> None:
        """Count the claim afresh next time (a refusal: fills and cancels may have freed some)."""
        self.reserved.pop(claim, None)

    def queue(
        self, connection: psycopg.Connection[Any], claims: Iterable[Claim], *, market: str
    ) -> _Reads:
        """Send the batch's reads (in the caller's pipeline): what is reserved, then the mirror."""
        if len(self.reserved) > MAX_CACHED_CLAIMS:
            self.reserved.clear()
        by_kind: dict[str, list[Claim]] = {}
        for claim in sorted(set(claims)):
            by_kind.setdefault(claim[0], []).append(claim)
        reserved = {kind: self._count(connection, kind, each) for kind, each in by_kind.items()}
        mirror = {}
        for kind, each in by_kind.items():
            makers = [maker for _, maker, _ in each]
            if kind == ENERGY:
                params: dict[str, Any] = {"makers": makers, "chain_id": self.chain_id}
                mirror[kind] = connection.execute(_ENERGY_MIRROR, params)
            elif kind == BID:
                params = {"makers": makers, "chain_id": self.chain_id, "market": market}
                mirror[kind] = connection.execute(_BID_MIRROR, params)
            else:
                params = {"makers": makers, "assets": [asset for *_, asset in each]}
                params |= {"chain_id": self.chain_id, "market": market}
                mirror[kind] = connection.execute(_REC_MIRROR, params)
        return _Reads(reserved=reserved, mirror=mirror)

    def fetch(self, connection: psycopg.Connection[Any], reads: _Reads) -> BatchFunds:
        values: dict[Claim, tuple[Any, ...]] = {}
        for kind, cursor in reads.mirror.items():
            for row in cursor.fetchall():
                if kind == REC:
                    values[(kind, row[0], int(row[1]))] = tuple(row[2:])
                else:
                    values[(kind, row[0], 0)] = tuple(row[1:])
        committed: dict[Claim, int] = {}
        for kind, cursor in reads.reserved.items():
            committed |= self._committed(connection, kind, cursor.fetchall())
        return BatchFunds(values=values, committed=committed)

    def _count(
        self, connection: psycopg.Connection[Any], kind: str, claims: list[Claim]
    ) -> psycopg.Cursor[Any]:
        """The reserved statement of `kind` for `claims`, after the last seq counted of each."""
        after = [k.upto if (k := self.reserved.get(claim)) else 0 for claim in claims]
        makers = [maker for _, maker, _ in claims]
        params: dict[str, Any] = {"makers": makers, "after": after, "open": OrderStatus.OPEN.value}
        if kind == ENERGY:
            params |= {"sell": eip712.SELL, "energy": eip712.ENERGY}
            return connection.execute(RESERVED_COLLATERAL, params)
        params |= {
            "assets": [asset for *_, asset in claims],
            "bids": kind == BID,
            "side": eip712.BUY if kind == BID else eip712.SELL,
            "rec": eip712.REC,
        }
        return connection.execute(RESERVED_MIRRORED, params)

    def _committed(
        self, connection: psycopg.Connection[Any], kind: str, rows: list[Any]
    ) -> dict[Claim, int]:
        """Each claim's reserved funds now (under its maker's lock): the kept figure plus the
        orders after it, counted afresh where the energy terms changed since."""
        committed, recount = {}, []
        terms: tuple[int, ...]
        for row in rows:
            if kind == ENERGY:
                maker, amount, upto, tolerance, penalty = row
                if tolerance is None or penalty is None:
                    continue  # no terms mirrored: the maker's offers ask the chain
                claim, terms = (kind, maker, 0), (int(tolerance), int(penalty))
            else:
                maker, asset, amount, upto = row
                claim, terms = (kind, maker, int(asset)), ()
            known = self.reserved.get(claim)
            if known is not None and known.terms != terms:
                recount.append(claim)
                continue
            total = int(amount) + (known.amount if known else 0)
            self.reserved[claim] = Reserved(total, int(upto), terms)
            committed[claim] = total
        if recount:
            for claim in recount:
                del self.reserved[claim]
            again = self._count(connection, kind, recount).fetchall()
            return committed | self._committed(connection, kind, again)
        return committed

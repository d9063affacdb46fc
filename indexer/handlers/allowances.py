"""What owners let our contracts move: GridUSD allowances to EnergyMarket and DemandResponse
(`token_allowances`) and RECRegistry operator approvals (`operator_approvals`), so order intake
can check a bid or a REC offer without asking the chain (backend/market/mirror_state.py).

An operator approval is exact: every change emits `ApprovalForAll`.

An allowance is not: OpenZeppelin v5's `transferFrom` lowers it with no `Approval` event. The
mirror knows every pull of our own contracts, because each one shows as a log:

- a pull into the contract itself (EnergyMarket's `deposit` and an ENERGY trade's escrow,
  DemandResponse's budgets and collateral) is a `Transfer(owner → contract)`: every such
  transfer lowers the mirrored allowance. A transfer the owner sends the contract directly does
  too although the chain's allowance stays: the mirror is then lower than the chain, never higher;
- a REC swap pulls the payment from the buyer straight to the seller. `CertificatesTraded` is
  emitted before that pull, and between the two the certificate's transfer calls the buyer's
  `onERC1155Received` (a contract wallet may `approve` in it). So the swap lowers the allowance
  at its event *and* notes the pull still to come: an `Approval` of the buyer in between is
  counted less that pull (as the chain will have it after the pull), and the pull's own
  `Transfer(buyer → seller)` only clears the note.

Allowances to other spenders are not mirrored: their pulls may go anywhere. An owner whose
allowance the mirror has no row for (no Approval seen) is asked of the chain. An approval of
`type(uint256).max` is `unlimited`: transferFrom never lowers it. Rows change in place, so the
undo log rewinds them through a reorg like any other row.
"""

from __future__ import annotations

from indexer.handlers import Log, on
from indexer.mirror import MirrorState, TableKey

MAX_UINT256 = 2**256 - 1
BIGINT_MAX = 2**63 - 1  # the column's largest value: a larger allowance is stored as this
SPENDERS = ("EnergyMarket", "DemandResponse")  # contracts whose every pull the mirror sees


def allowance_key(owner: str, spender: str) -> TableKey:
    return ("token_allowances", (owner, spender))


def _pending_key(log: Log, owner: str, spender: str) -> tuple[str, str, str, str]:
    """The note of the payment a REC swap of this transaction will still pull."""
    return ("pending-pulls", log.tx_hash, owner, spender)


def _pull_key(log: Log, owner: str, to: str, value: int) -> tuple[str, str, str, str, int]:
    """The note of a REC swap's pull, by the Transfer it will emit."""
    return ("swap-pull", log.tx_hash, owner, to, value)


def _store(
    state: MirrorState, log: Log, *, owner: str, spender: str, allowance: int, unlimited: bool
) -> None:
    state.put(
        "token_allowances",
        {
            "owner": owner,
            "spender": spender,
            "allowance": min(max(allowance, 0), BIGINT_MAX),
            "unlimited": unlimited,
            "block_number": log.block_number,
        },
    )


def _spend(state: MirrorState, log: Log, *, owner: str, spender: str, value: int) -> None:
    """Lower the mirrored allowance of (owner, spender) by `value`, as transferFrom does."""
    row = state.get("token_allowances", owner, spender)
    if row is None or row["unlimited"]:
        return
    _store(
        state,
        log,
        owner=owner,
        spender=spender,
        allowance=row["allowance"] - value,
        unlimited=False,
    )


@on(
    "GridUSD",
    "Approval",
    touches=lambda log: [allowance_key(log.args["owner"], log.args["spender"])],
)
def approval(state: MirrorState, log: Log) -> None:
    owner, spender, value = log.args["owner"], log.args["spender"], log.args["value"]
    if state.contracts.get(spender) not in SPENDERS:
        return
    unlimited = value == MAX_UINT256
    if not unlimited:  # a REC swap of this transaction still pulls from it
        value -= state.notes.get(_pending_key(log, owner, spender), 0)
    _store(state, log, owner=owner, spender=spender, allowance=value, unlimited=unlimited)


def transfer_touches(log: Log) -> list[TableKey]:
    """The allowance a GridUSD Transfer may have used (a row only if `to` is a spender)."""
    return [allowance_key(log.args["from"], log.args["to"])]


def transferred(state: MirrorState, log: Log) -> None:
    """A GridUSD Transfer (not a mint or burn): a REC swap's pull clears its note (counted at
    the swap's event); any other transfer into a mirrored spender lowers the allowance."""
    owner, to, value = log.args["from"], log.args["to"], log.args["value"]
    if state.notes:  # a REC swap of this unit of work has a pull to come
        waiting = state.notes.get(_pull_key(log, owner, to, value))
        if waiting:
            spender = waiting.pop(0)
            state.notes[_pending_key(log, owner, spender)] -= value
            return
    if state.contracts.get(to) in SPENDERS:
        _spend(state, log, owner=owner, spender=to, value=value)


def swap_touches(log: Log) -> list[TableKey]:
    return [allowance_key(log.args["buyer"], log.address)]


def swap_pulls(state: MirrorState, log: Log) -> None:
    """A REC swap (`CertificatesTraded` of the market at `log.address`): the market will pull
    the payment from the buyer to the seller later in this transaction."""
    buyer, seller, payment = log.args["buyer"], log.args["seller"], log.args["payment"]
    market = log.address
    _spend(state, log, owner=buyer, spender=market, value=payment)
    state.notes.setdefault(_pull_key(log, buyer, seller, payment), []).append(market)
    pending = _pending_key(log, buyer, market)
    state.notes[pending] = state.notes.get(pending, 0) + payment


@on(
    "RECRegistry",
    "ApprovalForAll",
    touches=lambda log: [("operator_approvals", (log.args["account"], log.args["operator"]))],
)
def approval_for_all(state: MirrorState, log: Log) -> None:
    state.put(
        "operator_approvals",
        {
            "account": log.args["account"],
            "operator": log.args["operator"],
            "approved": log.args["approved"],
            "block_number": log.block_number,
        },
    )

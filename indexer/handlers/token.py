"""Payment-token (GridUSD) balances from ERC-20 Transfer events (and what a transfer does to
the mirrored allowances: indexer/handlers/allowances.py)."""

from indexer.handlers import ZERO_ADDRESS, Log, on
from indexer.handlers.allowances import transfer_touches, transferred
from indexer.mirror import MirrorState, TableKey


def _accounts(log: Log) -> list[TableKey]:
    moved = [
        ("token_balances", (a,)) for a in (log.args["from"], log.args["to"]) if a != ZERO_ADDRESS
    ]
    if len(moved) == 2:  # neither a mint nor a burn: it may be a pull of an allowance
        moved += transfer_touches(log)
    return moved


def add_to_balance(state: MirrorState, log: Log, *, account: str, delta: int) -> None:
    row = state.get("token_balances", account)
    balance = (row["balance"] if row else 0) + delta
    state.put(
        "token_balances", {"account": account, "balance": balance, "block_number": log.block_number}
    )


@on("GridUSD", "Transfer", touches=_accounts)
def transfer(state: MirrorState, log: Log) -> None:
    value = log.args["value"]
    if log.args["from"] != ZERO_ADDRESS:
        add_to_balance(state, log, account=log.args["from"], delta=-value)
    if log.args["to"] != ZERO_ADDRESS:
        add_to_balance(state, log, account=log.args["to"], delta=value)
        if log.args["from"] != ZERO_ADDRESS:
            transferred(state, log)

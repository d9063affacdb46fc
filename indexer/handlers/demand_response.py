"""DemandResponse: program budgets, collateral, per-participant results, pull balances."""

from __future__ import annotations

from indexer.handlers import Log, Touches, on
from indexer.mirror import MirrorState, TableKey, new_row, record_type
from indexer.models import DrChainBalance, DrChainProgram, DrChainResult

ResultRecord = record_type(DrChainResult)


def _program(log: Log) -> list[TableKey]:
    return [("dr_chain_programs", (log.args["programId"],))]


def _program_and(field: str) -> Touches:
    def keys(log: Log) -> list[TableKey]:
        return [*_program(log), ("dr_chain_balances", (log.args[field],))]

    return keys


def _balance(
    state: MirrorState, log: Log, account: str, *, withdrawable: int = 0, collateral: int = 0
) -> None:
    row = state.get("dr_chain_balances", account)
    if row is None:
        row = new_row(DrChainBalance, account=account, withdrawable=0, collateral=0, block_number=0)
    state.put(
        "dr_chain_balances",
        dict(
            row,
            withdrawable=row["withdrawable"] + withdrawable,
            collateral=row["collateral"] + collateral,
            block_number=log.block_number,
        ),
    )


def _budget(state: MirrorState, log: Log, delta: int, **changes: object) -> None:
    row = state.copy_of("dr_chain_programs", log.args["programId"])
    row.update(budget=row["budget"] + delta, block_number=log.block_number, **changes)
    state.put("dr_chain_programs", row)


@on("DemandResponse", "ProgramCreated", touches=_program)
def program_created(state: MirrorState, log: Log) -> None:
    state.put(
        "dr_chain_programs",
        new_row(
            DrChainProgram,
            program_id=log.args["programId"],
            chain_id=state.chain_id,
            utility=log.args["utility"],
            budget=log.args["budget"],
            block_number=log.block_number,
        ),
    )


@on("DemandResponse", "ProgramFunded", touches=_program)
def program_funded(state: MirrorState, log: Log) -> None:
    _budget(state, log, log.args["amount"])


@on("DemandResponse", "ProgramClosed", touches=_program)
def program_closed(state: MirrorState, log: Log) -> None:
    row = state.copy_of("dr_chain_programs", log.args["programId"])
    remaining = log.args["remainingBudget"]
    _budget(state, log, -remaining, closed=True)
    _balance(state, log, row["utility"], withdrawable=remaining)


@on("DemandResponse", "CollateralPosted", touches=_program_and("participant"))
def collateral_posted(state: MirrorState, log: Log) -> None:
    _balance(state, log, log.args["participant"], collateral=log.args["amount"])


@on("DemandResponse", "CollateralReleased", touches=_program_and("participant"))
def collateral_released(state: MirrorState, log: Log) -> None:
    amount = log.args["amount"]
    _balance(state, log, log.args["participant"], withdrawable=amount, collateral=-amount)


@on("DemandResponse", "ParticipantSettled", touches=_program_and("participant"))
def participant_settled(state: MirrorState, log: Log) -> None:
    incentive, charged = log.args["incentive"], log.args["penaltyCharged"]
    state.insert(
        "dr_chain_results",
        ResultRecord(
            id=log.uid,
            chain_id=state.chain_id,
            program_id=log.args["programId"],
            event_id=log.args["eventId"],
            participant=log.args["participant"],
            incentive=incentive,
            penalty_owed=log.args["penaltyOwed"],
            penalty_charged=charged,
            tx_hash=log.tx_hash,
            block_number=log.block_number,
        ),
    )
    _budget(state, log, charged - incentive)
    _balance(state, log, log.args["participant"], withdrawable=incentive, collateral=-charged)


@on(
    "DemandResponse",
    "Withdrawn",
    touches=lambda log: [("dr_chain_balances", (log.args["account"],))],
)
def withdrawn(state: MirrorState, log: Log) -> None:
    _balance(state, log, log.args["account"], withdrawable=-log.args["amount"])

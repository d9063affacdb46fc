// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/**
 * @title DemandResponse
 * @notice GridLedger demand-response settlement (ITU-T Y.2072 incentives and penalties against a
 * customer baseline): a utility escrows a program budget, participants post collateral when they
 * enrol, and after each event the settler posts every participant's result once.
 *
 * Money flow (token base units, e.g. GridUSD):
 * - {createProgram}/{fundProgram}: the utility's tokens move here into the program's budget;
 * - {postCollateral}: a participant's tokens move here into its collateral for the program;
 * - {settle}: per (event, participant), exactly once: the incentive moves from the budget to the
 *   participant's withdrawable balance; the penalty (capped at the participant's collateral)
 *   moves from the collateral back to the budget;
 * - {closeProgram}: the utility's remaining budget moves to its withdrawable balance; afterwards
 *   {releaseCollateral} moves a participant's remaining collateral to its balance;
 * - {withdraw}: pays the caller's whole balance (pull payments).
 * Invariant: totalBalances + totalBudgets + totalCollateral == paymentToken.balanceOf(this)
 * (tokens sent here by plain transfers only make the right side larger).
 *
 * Program ids and event ids are the backend's ids (16-byte UUIDs, left-aligned in bytes32). A
 * program id is taken by its first {createProgram}; the backend only settles a program whose
 * recorded utility is the address of the program's operator account.
 */
contract DemandResponse is AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Posts event results ({settle}).
    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");

    /// @notice One participant's result in one event.
    struct Result {
        address participant;
        uint128 incentive;
        uint128 penalty;
    }

    /// @dev A program's utility, budget and state in two slots.
    struct Program {
        address utility;
        bool closed;
        uint256 budget;
    }

    IERC20 private immutable _paymentToken;

    uint256 private _totalBalances;
    uint256 private _totalBudgets;
    uint256 private _totalCollateral;
    mapping(bytes32 programId => Program) private _programs;
    mapping(bytes32 programId => mapping(address participant => uint256)) private _collateral;
    mapping(bytes32 eventId => mapping(address participant => bool)) private _settled;
    mapping(address account => uint256) private _balances;

    /// @notice `programId` was created by `utility` with `budget`.
    event ProgramCreated(bytes32 indexed programId, address indexed utility, uint256 budget);
    /// @notice `amount` was added to the budget of `programId` by its utility.
    event ProgramFunded(bytes32 indexed programId, uint256 amount, uint256 budget);
    /// @notice `programId` was closed; `remainingBudget` was credited to its utility.
    event ProgramClosed(bytes32 indexed programId, uint256 remainingBudget);
    /// @notice `participant` added `amount` to its collateral in `programId`.
    event CollateralPosted(bytes32 indexed programId, address indexed participant, uint256 amount, uint256 total);
    /// @notice `participant`'s remaining collateral in the closed `programId` went to its balance.
    event CollateralReleased(bytes32 indexed programId, address indexed participant, uint256 amount);
    /// @notice `participant`'s result in `eventId`: `incentive` credited, `penaltyCharged` of the
    /// `penaltyOwed` taken from its collateral.
    event ParticipantSettled(
        bytes32 indexed programId,
        bytes32 indexed eventId,
        address indexed participant,
        uint256 incentive,
        uint256 penaltyOwed,
        uint256 penaltyCharged
    );
    /// @notice `account` withdrew `amount`.
    event Withdrawn(address indexed account, uint256 amount);

    /// @notice A zero address where an address is needed.
    error DemandResponseZeroAddress();
    /// @notice `programId` already exists.
    error DemandResponseProgramExists(bytes32 programId);
    /// @notice `programId` does not exist.
    error DemandResponseUnknownProgram(bytes32 programId);
    /// @notice `programId` is closed.
    error DemandResponseProgramClosed(bytes32 programId);
    /// @notice `programId` is still open.
    error DemandResponseProgramOpen(bytes32 programId);
    /// @notice `caller` is not the utility of `programId`.
    error DemandResponseNotUtility(bytes32 programId, address caller, address utility);
    /// @notice `participant` has already been settled for `eventId`.
    error DemandResponseAlreadySettled(bytes32 eventId, address participant);
    /// @notice The budget of `programId` (`budget`) does not cover the incentive `needed`.
    error DemandResponseBudgetExceeded(bytes32 programId, uint256 budget, uint256 needed);
    /// @notice A zero amount where a positive one is needed.
    error DemandResponseZeroAmount();
    /// @notice Nothing to withdraw or release for `account`.
    error DemandResponseNothingDue(address account);

    /**
     * @param admin Receives DEFAULT_ADMIN_ROLE (the deployment hands it to the timelock).
     * @param paymentToken ERC-20 budgets, collateral and payouts are held in.
     */
    constructor(address admin, IERC20 paymentToken) {
        if (admin == address(0) || address(paymentToken) == address(0)) revert DemandResponseZeroAddress();
        _paymentToken = paymentToken;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ================================================================ utility

    /**
     * @notice Creates `programId` with the caller as its utility and escrows `budget` from it.
     *
     * Requirements:
     * - `programId` must be new; the caller must have approved `budget` to this contract.
     *
     * Emits a {ProgramCreated} event.
     */
    function createProgram(bytes32 programId, uint256 budget) external nonReentrant {
        Program storage program = _programs[programId];
        if (program.utility != address(0)) revert DemandResponseProgramExists(programId);
        program.utility = msg.sender;
        program.budget = budget;
        _totalBudgets += budget;
        emit ProgramCreated(programId, msg.sender, budget);
        if (budget > 0) _paymentToken.safeTransferFrom(msg.sender, address(this), budget);
    }

    /**
     * @notice Adds `amount` to the budget of the caller's open program `programId`.
     *
     * Requirements:
     * - the caller must be the program's utility; the program must be open; `amount` > 0.
     *
     * Emits a {ProgramFunded} event.
     */
    function fundProgram(bytes32 programId, uint256 amount) external nonReentrant {
        Program storage program = _openProgram(programId);
        _onlyUtility(programId, program);
        if (amount == 0) revert DemandResponseZeroAmount();
        program.budget += amount;
        _totalBudgets += amount;
        emit ProgramFunded(programId, amount, program.budget);
        _paymentToken.safeTransferFrom(msg.sender, address(this), amount);
    }

    /**
     * @notice Closes the caller's program: no more settlements; its remaining budget is credited
     * to the utility's withdrawable balance and participants may release their collateral.
     *
     * Requirements:
     * - the caller must be the program's utility; the program must be open.
     *
     * Emits a {ProgramClosed} event.
     */
    function closeProgram(bytes32 programId) external {
        Program storage program = _openProgram(programId);
        _onlyUtility(programId, program);
        uint256 remaining = program.budget;
        program.closed = true;
        program.budget = 0;
        _totalBudgets -= remaining;
        _balances[msg.sender] += remaining;
        _totalBalances += remaining;
        emit ProgramClosed(programId, remaining);
    }

    // ================================================================ participants

    /**
     * @notice Adds `amount` to the caller's collateral in the open program `programId` (penalties
     * for shortfall are taken from it, up to what it holds).
     *
     * Requirements:
     * - the program must exist and be open; `amount` > 0 and approved to this contract.
     *
     * Emits a {CollateralPosted} event.
     */
    function postCollateral(bytes32 programId, uint256 amount) external nonReentrant {
        _openProgram(programId);
        if (amount == 0) revert DemandResponseZeroAmount();
        uint256 total = _collateral[programId][msg.sender] + amount;
        _collateral[programId][msg.sender] = total;
        _totalCollateral += amount;
        emit CollateralPosted(programId, msg.sender, amount, total);
        _paymentToken.safeTransferFrom(msg.sender, address(this), amount);
    }

    /**
     * @notice Moves the caller's remaining collateral in the closed program `programId` to its
     * withdrawable balance.
     *
     * Requirements:
     * - the program must be closed; the caller must have collateral left in it.
     *
     * Emits a {CollateralReleased} event.
     */
    function releaseCollateral(bytes32 programId) external {
        Program storage program = _programs[programId];
        if (program.utility == address(0)) revert DemandResponseUnknownProgram(programId);
        if (!program.closed) revert DemandResponseProgramOpen(programId);
        uint256 amount = _collateral[programId][msg.sender];
        if (amount == 0) revert DemandResponseNothingDue(msg.sender);
        _collateral[programId][msg.sender] = 0;
        _totalCollateral -= amount;
        _balances[msg.sender] += amount;
        _totalBalances += amount;
        emit CollateralReleased(programId, msg.sender, amount);
    }

    /**
     * @notice Pays the caller its whole withdrawable balance (incentives, released collateral,
     * a closed program's remaining budget).
     *
     * Requirements:
     * - the caller's balance must be positive.
     *
     * Emits a {Withdrawn} event.
     */
    function withdraw() external nonReentrant {
        uint256 amount = _balances[msg.sender];
        if (amount == 0) revert DemandResponseNothingDue(msg.sender);
        _balances[msg.sender] = 0;
        _totalBalances -= amount;
        emit Withdrawn(msg.sender, amount);
        _paymentToken.safeTransfer(msg.sender, amount);
    }

    // ================================================================ settlement

    /**
     * @notice Posts the results of event `eventId` of program `programId`, each participant once:
     * the incentive moves from the budget to the participant's balance, the penalty (capped at
     * the participant's collateral) from its collateral to the budget. The penalty is applied
     * before the incentive, so a participant's penalty helps cover its own incentive.
     *
     * Requirements:
     * - the caller must have SETTLER_ROLE; the program must exist and be open.
     * - no participant of `results` may be settled for `eventId` already (nor twice in `results`).
     * - the budget must cover the incentives.
     *
     * Emits a {ParticipantSettled} event per result.
     */
    function settle(bytes32 programId, bytes32 eventId, Result[] calldata results) external onlyRole(SETTLER_ROLE) {
        Program storage program = _openProgram(programId);
        uint256 budget = program.budget;
        uint256 credited = 0;
        uint256 charged = 0;
        for (uint256 i = 0; i < results.length; ++i) {
            uint256 penalty;
            (budget, penalty) = _settleOne(programId, eventId, results[i], budget);
            credited += results[i].incentive;
            charged += penalty;
        }
        program.budget = budget;
        _totalCollateral -= charged;
        _totalBudgets = _totalBudgets + charged - credited;
        _totalBalances += credited;
    }

    // ================================================================ views

    /// @notice The ERC-20 this contract holds.
    function paymentToken() external view returns (IERC20) {
        return _paymentToken;
    }

    /// @notice (utility, closed, budget) of `programId` (utility zero: no such program).
    function programInfo(bytes32 programId) external view returns (address utility, bool closed, uint256 budget) {
        Program storage found = _programs[programId];
        return (found.utility, found.closed, found.budget);
    }

    /// @notice `participant`'s collateral left in `programId`.
    function collateralOf(bytes32 programId, address participant) external view returns (uint256) {
        return _collateral[programId][participant];
    }

    /// @notice Whether `participant` has been settled for `eventId`.
    function isSettled(bytes32 eventId, address participant) external view returns (bool) {
        return _settled[eventId][participant];
    }

    /// @notice `account`'s withdrawable balance.
    function balanceOf(address account) external view returns (uint256) {
        return _balances[account];
    }

    /// @notice Sum of all withdrawable balances.
    function totalBalances() external view returns (uint256) {
        return _totalBalances;
    }

    /// @notice Sum of all open programs' budgets.
    function totalBudgets() external view returns (uint256) {
        return _totalBudgets;
    }

    /// @notice Sum of all collateral held.
    function totalCollateral() external view returns (uint256) {
        return _totalCollateral;
    }

    // ================================================================ internal

    function _openProgram(bytes32 programId) private view returns (Program storage program) {
        program = _programs[programId];
        if (program.utility == address(0)) revert DemandResponseUnknownProgram(programId);
        if (program.closed) revert DemandResponseProgramClosed(programId);
    }

    function _onlyUtility(bytes32 programId, Program storage program) private view {
        if (program.utility != msg.sender) revert DemandResponseNotUtility(programId, msg.sender, program.utility);
    }

    /// @dev One result of {settle}: the budget after it and the penalty taken from collateral.
    function _settleOne(
        bytes32 programId,
        bytes32 eventId,
        Result calldata result,
        uint256 budget
    ) private returns (uint256, uint256 penalty) {
        address participant = result.participant;
        if (participant == address(0)) revert DemandResponseZeroAddress();
        if (_settled[eventId][participant]) revert DemandResponseAlreadySettled(eventId, participant);
        _settled[eventId][participant] = true;
        uint256 held = _collateral[programId][participant];
        penalty = result.penalty < held ? result.penalty : held;
        if (penalty > 0) _collateral[programId][participant] = held - penalty;
        budget += penalty;
        if (result.incentive > budget) revert DemandResponseBudgetExceeded(programId, budget, result.incentive);
        budget -= result.incentive;
        if (result.incentive > 0) _balances[participant] += result.incentive;
        emit ParticipantSettled(programId, eventId, participant, result.incentive, result.penalty, penalty);
        return (budget, penalty);
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/**
 * @title GridLedgerTimelock
 * @notice Holds DEFAULT_ADMIN_ROLE on GridUSD, RECRegistry and EnergyMarket after deployment:
 * every role change and market parameter change is scheduled by a proposer, waits at least
 * `minDelay` seconds in public view, then is executed. The API holds none of these keys.
 *
 * OpenZeppelin's TimelockController unchanged; this contract only gives it a name in our build.
 * With `admin` = address(0) the timelock administers itself: adding or removing a proposer
 * goes through the same delay.
 */
contract GridLedgerTimelock is TimelockController {
    /**
     * @param minDelay Seconds between scheduling and the earliest execution.
     * @param proposers Receive PROPOSER_ROLE and CANCELLER_ROLE.
     * @param executors Receive EXECUTOR_ROLE (address(0): anyone may execute a ready operation).
     * @param admin Optional extra admin of the timelock's own roles (address(0): none).
     */
    constructor(
        uint256 minDelay,
        address[] memory proposers,
        address[] memory executors,
        address admin
    ) TimelockController(minDelay, proposers, executors, admin) {}
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/**
 * @title GridUSD
 * @notice Test stablecoin for GridLedger devnets and tests: 6 decimals like USDC, ERC-2612 permit,
 * and a role-gated `mint` that the devnet faucet calls.
 */
contract GridUSD is ERC20, ERC20Permit, AccessControl {
    /// @notice Role allowed to mint new tokens (the devnet faucet).
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @param admin Receives DEFAULT_ADMIN_ROLE and MINTER_ROLE.
    constructor(address admin) ERC20("GridLedger Test USD", "gUSD") ERC20Permit("GridLedger Test USD") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
    }

    /// @notice Token amounts use 6 decimals (1 gUSD = 1_000_000 base units).
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /**
     * @notice Mints `amount` base units to `to`.
     *
     * Requirements:
     * - the caller must have MINTER_ROLE.
     * - `to` must not be the zero address.
     *
     * Emits a {Transfer} event.
     */
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }
}

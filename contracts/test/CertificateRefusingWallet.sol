// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC1155Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {ERC1271Wallet} from "./ERC1271Wallet.sol";

/**
 * @title CertificateRefusingWallet
 * @notice TEST ONLY. An {ERC1271Wallet} whose ERC-1155 receiver hook refuses every certificate
 * and frames the seller: it reverts with `ERC1155InsufficientBalance(from, 0, value, id)`, the
 * error a seller without the certificates would cause. A REC buyer like this must not get an
 * honest seller's offer withdrawn by the operator's matcher.
 */
contract CertificateRefusingWallet is ERC1271Wallet {
    constructor(address owner_) ERC1271Wallet(owner_) {}

    /// @notice Reverts, blaming the sender `from` for a balance it has.
    function onERC1155Received(
        address,
        address from,
        uint256 id,
        uint256 value,
        bytes memory
    ) public pure override returns (bytes4) {
        revert IERC1155Errors.ERC1155InsufficientBalance(from, 0, value, id);
    }
}

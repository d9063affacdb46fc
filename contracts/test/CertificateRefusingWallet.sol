// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC1271Wallet} from "./ERC1271Wallet.sol";

/**
 * @title CertificateRefusingWallet
 * @notice TEST ONLY. An {ERC1271Wallet} whose ERC-1155 receiver hook reverts with an error of
 * its own: a REC buyer whose every purchase reverts in the seller's certificate transfer, with
 * revert data the market's and registry's ABIs do not decode (the matcher must find the order
 * at fault by trying each order against another counterparty).
 */
contract CertificateRefusingWallet is ERC1271Wallet {
    /// @notice The wallet refuses every certificate.
    error CertificateRefusingWalletRefused(address operator, uint256 id);

    constructor(address owner_) ERC1271Wallet(owner_) {}

    /// @notice Reverts: this wallet accepts no certificate.
    function onERC1155Received(
        address operator,
        address,
        uint256 id,
        uint256,
        bytes memory
    ) public pure override returns (bytes4) {
        revert CertificateRefusingWalletRefused(operator, id);
    }
}

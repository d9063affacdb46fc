// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";

/**
 * @title TestCertificates
 * @notice TEST ONLY. A plain ERC-1155 with open minting that stands in for the REC registry in
 * EnergyMarket unit tests (the market depends only on IERC1155). Token id = certificate id,
 * amount = Wh.
 */
contract TestCertificates is ERC1155 {
    constructor() ERC1155("") {}

    /**
     * @notice Mints `amount` Wh of certificate `id` to `to`. Anyone may call (test helper).
     *
     * Emits a {TransferSingle} event.
     */
    function mint(address to, uint256 id, uint256 amount) external {
        _mint(to, id, amount, "");
    }
}

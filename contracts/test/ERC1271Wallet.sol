// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ERC1155Holder} from "@openzeppelin/contracts/token/ERC1155/utils/ERC1155Holder.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/**
 * @title ERC1271Wallet
 * @notice TEST ONLY. Minimal contract wallet controlled by one EOA. A signature is valid for the
 * wallet when it is the owner's ECDSA signature over exactly the given hash (for EnergyMarket
 * orders: the EIP-712 digest, i.e. what `eth_signTypedData_v4` signs).
 */
contract ERC1271Wallet is IERC1271, ERC1155Holder {
    /// @notice The caller is not the wallet owner.
    error ERC1271WalletUnauthorized(address caller);

    /// @notice The EOA that controls the wallet.
    address public immutable owner;

    constructor(address owner_) {
        owner = owner_;
    }

    /**
     * @notice ERC-1271: returns the magic value when `signature` is `owner`'s signature of `hash`.
     */
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        // The third value only details why recovery failed; any error means "not valid" here.
        // slither-disable-next-line unused-return
        (address recovered, ECDSA.RecoverError err, ) = ECDSA.tryRecover(hash, signature);
        if (err == ECDSA.RecoverError.NoError && recovered == owner) {
            return IERC1271.isValidSignature.selector;
        }
        return 0xffffffff;
    }

    /**
     * @notice Calls `target` with `data` (e.g. `approve`) on behalf of the wallet.
     *
     * Requirements:
     * - the caller must be `owner`.
     */
    function execute(address target, bytes calldata data) external returns (bytes memory) {
        if (msg.sender != owner) revert ERC1271WalletUnauthorized(msg.sender);
        return Address.functionCall(target, data);
    }
}

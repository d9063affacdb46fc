// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/**
 * @title EvidenceVerifier
 * @notice TEST ONLY. Exposes OpenZeppelin's `MerkleProof.verify`, the check a third party (or a
 * contract) runs to prove a reading is behind a certificate's `evidenceRoot`.
 */
contract EvidenceVerifier {
    /// @notice Returns whether `proof` leads from `leaf` (a reading digest) to `root`.
    function verify(bytes32[] calldata proof, bytes32 root, bytes32 leaf) external pure returns (bool) {
        return MerkleProof.verify(proof, root, leaf);
    }
}

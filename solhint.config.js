// solhint over contracts/ (`npm run lint:sol`, run by `make lint`). Pass `-c solhint.config.js`:
// solhint 6 finds only a .solhint.json by itself, which cannot hold the reasons below.
// The recommended ruleset less the rules below; a single accepted site carries
// `// solhint-disable-next-line <rule>` with its reason on the line above instead.
module.exports = {
  extends: "solhint:recommended",
  rules: {
    // Constructors have no visibility since Solidity 0.7; the rule says to set this itself.
    "func-visibility": ["warn", { ignoreConstructors: true }],
    // Our NatSpec is OpenZeppelin's prose form (what, Requirements, Emits) on the implementation;
    // the rule wants @notice/@param/@return tags on every interface and internal function too.
    "use-natspec": "off",
    // Private immutables are named like other private state (`_paymentToken`, OpenZeppelin style);
    // ERC1271Wallet.owner is a public getter, so renaming it would change the ABI.
    "immutable-vars-naming": "off",
    // Which event fields are indexed is part of the event ABI the indexer decodes.
    "gas-indexed-events": "off",
    // The flagged structs are ABI types (call arguments and return values), not storage.
    "gas-struct-packing": "off",
    // `<=`/`>=` state the rules (deadlines, limits); a strict form would change behaviour.
    "gas-strict-inequalities": "off",
  },
};

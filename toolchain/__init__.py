"""Build-time tooling: the bridge that lets Ape compile Solidity with npm's solcjs offline."""

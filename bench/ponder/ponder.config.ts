// Ponder indexing the benchmark's Anvil chain (bench/indexer_backfill.py writes the deployment
// JSON named by GRIDLEDGER_PONDER_DEPLOYMENT: chain id, RPC URL, start block, contracts).
import { readFileSync } from "node:fs";
import { createConfig } from "ponder";
import { http } from "viem";

const deployment = JSON.parse(readFileSync(process.env.GRIDLEDGER_PONDER_DEPLOYMENT!, "utf8"));

export default createConfig({
  networks: {
    anvil: {
      chainId: deployment.chainId,
      // viem's default 10 MB response cap refuses Ponder's own eth_getLogs ranges on this
      // chain (25 MB for 100 blocks) and Ponder does not shrink the range on that error
      transport: http(deployment.rpcUrl, { maxResponseBodySize: false, timeout: 120_000 }),
      disableCache: true,
    },
  },
  contracts: Object.fromEntries(
    Object.entries(deployment.contracts).map(([name, c]: [string, any]) => [
      name,
      { network: "anvil", abi: c.abi, address: c.address, startBlock: deployment.startBlock },
    ]),
  ) as any,
});

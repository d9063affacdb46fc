// Chain writes from the panels, one path for both kinds of account: ask the API, which signs
// with a custodial account's key; for a wallet account it answers a problem listing the `calls`
// (contract, calldata) that the wallet sends itself with `eth_sendTransaction`, one by one, each
// waited for (the API's `/v1/chain/transactions/{tx_hash}` reports it mined or reverted).
import { ApiError, data, mine } from "./api.js";
import { short } from "./format.js";

const POLL_MS = 500;
const MINED_WITHIN_MS = 120_000;

/** The wallet calls a `wallet-must-sign` (or `withdraw-from-wallet`) problem carries. */
export const walletCalls = (error) => (error instanceof ApiError && Array.isArray(error.problem?.calls) ? error.problem.calls : []);

/** Resolves once `hash` is mined; throws when it reverted or never appears. */
export async function mined(hash) {
  const deadline = Date.now() + MINED_WITHIN_MS;
  while (Date.now() < deadline) {
    const tx = await data(mine.GET("/v1/chain/transactions/{tx_hash}", { params: { path: { tx_hash: hash } } }))
      .catch((error) => { if (error.status === 404) return null; throw error; });
    if (tx?.status === "reverted") throw new Error(`Transaction ${short(hash)} reverted.`);
    if (tx?.status === "succeeded") return tx;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  throw new Error(`Transaction ${short(hash)} was not mined within ${MINED_WITHIN_MS / 1000} s.`);
}

/**
 * Run `request` (an API write). A custodial account gets `{ api: body }`; a wallet account's
 * calls are sent from `wallet` (the connected EIP-1193 provider) and give `{ hashes }`.
 * `say(text)` reports progress ("Confirm … in your wallet").
 * @param {() => Promise<any>} request
 * @param {{ kind: string, address?: string } | null} me
 * @param {{ provider(): Promise<any> }} wallet
 * @param {(text: string) => void} [say]
 */
export async function write(request, me, wallet, say = () => {}) {
  try {
    return { api: await request() };
  } catch (error) {
    const calls = walletCalls(error);
    if (me?.kind !== "wallet" || !calls.length) throw error;
    const provider = await wallet.provider();
    const hashes = [];
    for (const [index, call] of calls.entries()) {
      const step = calls.length > 1 ? ` (${index + 1} of ${calls.length})` : "";
      say(`Confirm ${call.function.split("(")[0]} in your wallet${step}…`);
      const hash = await provider.request({ method: "eth_sendTransaction", params: [{ from: me.address, to: call.to, data: call.data }] });
      say(`Waiting for ${short(hash)} to be mined…`);
      await mined(hash);
      hashes.push(hash);
    }
    return { hashes };
  }
}

/** "tx 0x1234…abcd" for what `write` returned. */
export const txLabel = (done) => `tx ${(done.hashes || [done.api?.tx_hash ?? done.api?.token_tx]).filter(Boolean).map(short).join(", ")}`;

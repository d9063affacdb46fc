// Browser wallets: EIP-6963 discovery (falling back to `window.ethereum`), EIP-1193 requests,
// our chain as `GET /v1/chain` describes it, and the EIP-4361 (SIWE) message a sign-in signs.
const announced = new Map(); // rdns (or name) → { info, provider }

window.addEventListener("eip6963:announceProvider", (event) => {
  const { info, provider } = /** @type {CustomEvent} */ (event).detail || {};
  if (provider) announced.set(info?.rdns || info?.name || String(announced.size), { info, provider });
});

/** The first wallet that announces itself (EIP-6963), else the injected `window.ethereum`. */
export async function discover(waitMs = 300) {
  window.dispatchEvent(new Event("eip6963:requestProvider"));
  if (!announced.size) await new Promise((resolve) => setTimeout(resolve, waitMs));
  const first = announced.values().next().value;
  if (first) return { name: first.info?.name || "wallet", provider: first.provider };
  const injected = /** @type {any} */ (window).ethereum;
  if (injected) return { name: "injected wallet", provider: injected };
  return null;
}

/** Switch the wallet to `chain` (the body of `GET /v1/chain`); add the chain first when the
 * wallet does not know it (4902), with the API's public RPC URL. */
export async function useChain(provider, chain) {
  const current = await provider.request({ method: "eth_chainId" });
  if (BigInt(current) === BigInt(chain.chain_id)) return;
  try {
    await provider.request({ method: "wallet_switchEthereumChain", params: [{ chainId: chain.chain_id_hex }] });
  } catch (error) {
    if (error?.code !== 4902) throw error;
    if (!chain.rpc_url) throw new Error(`Add chain ${chain.chain_id} (${chain.chain_name}) to your wallet: this server publishes no RPC URL.`, { cause: error });
    await provider.request({
      method: "wallet_addEthereumChain",
      params: [{
        chainId: chain.chain_id_hex,
        chainName: chain.chain_name,
        nativeCurrency: chain.native_currency,
        rpcUrls: [chain.rpc_url],
      }],
    });
  }
}

/** An EIP-4361 message for this page (domain = host and port, URI = origin). */
export function siweMessage({ address, chainId, nonce, issuedAt = new Date() }) {
  return `${location.host} wants you to sign in with your Ethereum account:\n${address}\n\n`
    + `Sign in to GridLedger\n\nURI: ${location.origin}\nVersion: 1\nChain ID: ${chainId}\n`
    + `Nonce: ${nonce}\nIssued At: ${issuedAt.toISOString().replace(/\.\d{3}Z$/, "Z")}`;
}

/** `personal_sign` of a UTF-8 message (hex-encoded, as wallets expect). */
export function personalSign(provider, address, message) {
  const hex = [...new TextEncoder().encode(message)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return provider.request({ method: "personal_sign", params: [`0x${hex}`, address] });
}

/** `eth_signTypedData_v4` of an EIP-712 document exactly as the API served it. */
export const signTypedData = (provider, address, document) =>
  provider.request({ method: "eth_signTypedData_v4", params: [address, JSON.stringify(document)] });

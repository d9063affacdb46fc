// GridLedger dashboard: public market data for everybody, account views after sign-in.
import { api, data, login, logout, mine, signedIn, siweLogin } from "./api.js";
import { $, short } from "./format.js";
import { connectLive } from "./live.js";
import { refreshDr } from "./views/dr.js";
import { refreshHealth } from "./views/health.js";
import { loadMarkets, refreshMarket, refreshPrices } from "./views/market.js";
import { refreshNeighbourhood, setupMeterForm } from "./views/meters.js";
import { refreshRecs } from "./views/recs.js";
import { refreshSettlement } from "./views/settlement.js";
import { refreshTrading } from "./views/trading.js";
import { refreshVpp } from "./views/vpp.js";
import { discover, personalSign, siweMessage, useChain } from "./wallet.js";

let me = null;
let summary = null;
let connected = null; // { provider, address, name } after "Connect wallet"

function report(view, error) {
  console.error(`${view}:`, error);
}

async function refreshAll() {
  summary = await data(api.GET("/v1/public/summary")).catch((e) => { report("summary", e); return null; });
  await Promise.all([
    loadMarkets((market) => live.follow(market)).then(refreshMarket).catch((e) => report("market", e)),
    refreshPrices().catch((e) => report("prices", e)),
    refreshSettlement(me, wallet).catch((e) => report("settlement", e)),
    refreshDr(me).catch((e) => report("dr", e)),
    summary ? refreshRecs(summary, me, wallet).catch((e) => report("recs", e)) : null,
    refreshNeighbourhood().catch((e) => report("meters", e)),
    refreshHealth(summary).catch((e) => report("health", e)),
    refreshTrading(me, wallet).catch((e) => report("trading", e)),
    refreshVpp(me).catch((e) => report("vpp", e)),
  ]);
  document.body.dataset.loaded = String(Date.now());
}

function showAccount() {
  $("#login-form").hidden = Boolean(me);
  $("#signed-in").hidden = !me;
  const name = $("#account-name");
  name.textContent = me ? (me.display_name || me.email || short(me.address)) : "";
  name.title = me?.address || "";
  setupMeterForm();
}

/** EIP-6963 / EIP-1193 connect, switch to the API's chain, then Sign-In with Ethereum. */
async function connectWallet() {
  const found = await discover();
  if (!found) throw new Error("No browser wallet found: install one (e.g. MetaMask) and reload.");
  const { provider, name } = found;
  const [address] = await provider.request({ method: "eth_requestAccounts" });
  if (!address) throw new Error(`${name} shared no account.`);
  const [{ nonce, chain_id: chainId }, chain] = await Promise.all([
    data(api.GET("/v1/auth/siwe/nonce")), data(api.GET("/v1/chain"))]);
  await useChain(provider, chain);
  const message = siweMessage({ address, chainId, nonce });
  const signature = await personalSign(provider, address, message);
  connected = { provider, address, name };
  return siweLogin(message, signature);
}

// What the trading panel signs with: the connected wallet (reconnecting after a reload).
const wallet = {
  async provider() {
    if (!connected || connected.address.toLowerCase() !== me?.address?.toLowerCase()) {
      const found = await discover();
      if (!found) throw new Error("Connect your wallet to sign orders.");
      const [address] = await found.provider.request({ method: "eth_requestAccounts" });
      connected = { ...found, address };
    }
    return connected.provider;
  },
};

// Coalesce bursts of live messages into one refresh.
let pending = null;
function soon(work) {
  clearTimeout(pending);
  pending = setTimeout(() => work().catch((e) => report("live", e)), 250);
}

const live = connectLive(() => soon(refreshAll));

$("#login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = $("#login-error");
  error.textContent = "";
  try {
    me = await login($("#login-email").value, $("#login-password").value);
    $("#login-password").value = "";
    showAccount();
    await refreshAll();
  } catch (e) {
    error.textContent = e.message;
  }
});

$("#connect-wallet").addEventListener("click", async () => {
  const error = $("#login-error");
  const button = $("#connect-wallet");
  error.textContent = "";
  button.disabled = true;
  try {
    me = await connectWallet();
    showAccount();
    await refreshAll();
  } catch (e) {
    error.textContent = e.message;
  } finally {
    button.disabled = false;
  }
});

$("#logout").addEventListener("click", async () => {
  await logout();
  me = null;
  connected = null;
  showAccount();
  await refreshAll();
  $("#login-email").focus();
});

async function start() {
  if (signedIn()) me = await data(mine.GET("/v1/auth/me")).catch(() => null);
  showAccount();
  await refreshAll();
  setInterval(() => refreshAll(), 15_000); // a fallback when the socket misses something
}

start();

// GridLedger dashboard: public market data for everybody, account views after sign-in.
import { get, getMine, login, logout, signedIn } from "./api.js";
import { $ } from "./format.js";
import { connectLive } from "./live.js";
import { refreshHealth } from "./views/health.js";
import { loadMarkets, refreshMarket, refreshPrices } from "./views/market.js";
import { refreshNeighbourhood, setupMeterForm } from "./views/meters.js";
import { refreshRecs } from "./views/recs.js";
import { refreshSettlement } from "./views/settlement.js";

let me = null;
let summary = null;

function report(view, error) {
  console.error(`${view}:`, error);
}

async function refreshAll() {
  summary = await get("/v1/public/summary").catch((e) => { report("summary", e); return null; });
  await Promise.all([
    loadMarkets((market) => live.follow(market)).then(refreshMarket).catch((e) => report("market", e)),
    refreshPrices().catch((e) => report("prices", e)),
    refreshSettlement(me).catch((e) => report("settlement", e)),
    summary ? refreshRecs(summary, me).catch((e) => report("recs", e)) : null,
    refreshNeighbourhood().catch((e) => report("meters", e)),
    refreshHealth(summary).catch((e) => report("health", e)),
  ]);
  document.body.dataset.loaded = String(Date.now());
}

function showAccount() {
  $("#login-form").hidden = Boolean(me);
  $("#signed-in").hidden = !me;
  $("#account-name").textContent = me ? (me.display_name || me.email || me.address) : "";
  setupMeterForm();
}

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

$("#logout").addEventListener("click", async () => {
  await logout();
  me = null;
  showAccount();
  await refreshAll();
  $("#login-email").focus();
});

async function start() {
  if (signedIn()) me = await getMine("/v1/auth/me").catch(() => null);
  showAccount();
  await refreshAll();
  setInterval(() => refreshAll(), 15_000); // a fallback when the socket misses something
}

start();

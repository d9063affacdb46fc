// System health: /health (database, Redis, RPC, indexer lag; freshness of settlement, issuance,
// the matcher's, MQTT subscriber's, beat's and VTN's heartbeats, the outbox) and indexed chain totals.
import { api, data } from "../api.js";
import { $, h } from "../format.js";

// Freshness checks: `degraded` when late; what is late and since when only for operators.
const FRESHNESS = [
  ["settlement", "Settlement"],
  ["issuance", "REC issuance"],
  ["matcher", "Matcher"],
  ["mqtt", "MQTT subscriber"],
  ["beat", "Beat"],
  ["vtn", "OpenADR VTN"],
  ["outbox", "Outbox"],
];

function fresh(check) {
  if (!check) return "–";
  if (check.ok) return "ok";
  if (!check.late) return "degraded";
  return check.since ? `degraded: ${check.late} (since ${check.since})` : `degraded: ${check.late}`;
}

export async function refreshHealth(summary) {
  let health;
  try {
    health = await data(api.GET("/health"));
  } catch (error) {
    health = error.problem?.checks ? error.problem : { status: "unreachable", checks: {} };
  }
  const badge = $("#health-badge");
  badge.textContent = health.status === "ok" ? "System OK" : `System ${health.status}`;
  badge.className = `badge ${health.status === "ok" ? "ok" : "bad"}`;
  const c = health.checks;
  const item = (term, value) => h("div", {}, h("dt", {}, term), h("dd", {}, value));
  // Why a check fails (`error`) is shown to operators only; everyone else sees that it fails.
  const ok = (check) => (check ? (check.ok ? "ok" : check.error ? `failing: ${check.error}` : "failing") : "–");
  $("#health-details").replaceChildren(
    item("Block height", String(c.rpc?.head_block ?? summary?.chain.head_block ?? "–")),
    item("Indexed block", String(c.indexer?.indexed_block ?? summary?.chain.indexed_block ?? "–")),
    item("Indexer lag", c.indexer?.ok ? `${c.indexer.lag_blocks} blocks / ${c.indexer.lag_seconds} s` : ok(c.indexer)),
    item("Database", ok(c.database)),
    item("Redis", c.redis?.ok ? (c.redis.configured === false ? "embedded (no Redis)" : "ok") : ok(c.redis)),
    item("Chain RPC", ok(c.rpc)),
    item("Queue depth", c.queue ? String(c.queue.depth) : "not reported"),
    ...FRESHNESS.map(([name, term]) => item(term, fresh(c[name]))),
    item("Trades", summary ? `${summary.market.trades} (${summary.market.settled_trades} settled, ${summary.market.open_trades} open)` : "–"));
}

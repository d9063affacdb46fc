// System health: /health (database, Redis, RPC, indexer lag) and indexed chain totals.
import { api, data } from "../api.js";
import { $, h } from "../format.js";

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
    item("Trades", summary ? `${summary.market.trades} (${summary.market.settled_trades} settled, ${summary.market.open_trades} open)` : "–"));
}
